"""`buf lint` and `buf breaking` on proto/: the API follows buf's STANDARD and comment rules,
and nothing released has been broken (breaking changes need a new package version).

buf comes from npm (`npx @bufbuild/buf`, which .ci/run fetches); without it these tests
are skipped, except under CI=true, where they must run.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tryon.server.gen_stubs import REPOSITORY

# The protos as last released (a snapshot, so the check needs no git history): `buf
# breaking` compares the current files against it. Copy a file here when releasing it.
RELEASED = Path(__file__).parent / "released_proto"
BUF_PACKAGE = "@bufbuild/buf@1"


@functools.cache
def _available_buf() -> tuple[str, ...] | None:
    """A command that runs buf: `buf` on PATH, else through npx; None when neither works."""
    if shutil.which("buf"):
        return ("buf",)
    npx = shutil.which("npx")
    if npx is not None:
        command = (npx, "--yes", BUF_PACKAGE)
        probe = subprocess.run([*command, "--version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return command
    return None


def buf_command() -> list[str]:
    """How to run buf here; skip (fail under CI) when it cannot run."""
    command = _available_buf()
    if command is not None:
        return list(command)
    reason = "buf is not available: install it or Node.js (npx --yes @bufbuild/buf)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI must check the proto")
    pytest.skip(reason)


def run_buf(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*buf_command(), *args], cwd=REPOSITORY, capture_output=True, text=True, timeout=300
    )


def test_buf_lint_passes():
    result = run_buf("lint")
    assert result.returncode == 0, f"buf lint:\n{result.stdout}{result.stderr}"


def test_buf_breaking_against_the_released_proto_passes(tmp_path):
    result = run_buf("breaking", "--against", str(RELEASED))
    assert result.returncode == 0, f"buf breaking:\n{result.stdout}{result.stderr}"


def test_buf_breaking_notices_a_changed_released_rpc(tmp_path):
    """The check can fail: v1's TryOnMany answering another type is caught."""
    changed = tmp_path / "changed"
    shutil.copytree(REPOSITORY / "proto", changed)
    shutil.copy(REPOSITORY / "buf.yaml", tmp_path / "buf.yaml")
    proto = changed / "tryon" / "v1" / "tryon.proto"
    text = proto.read_text().replace(
        "returns (stream TryOnResponse)", "returns (stream ListGarmentsResponse)"
    )
    proto.write_text(text)
    (tmp_path / "buf.yaml").write_text(
        (REPOSITORY / "buf.yaml").read_text().replace("path: proto", "path: changed")
    )
    result = subprocess.run(
        [*buf_command(), "breaking", "--against", str(RELEASED)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    assert "TryOnMany" in result.stdout + result.stderr
