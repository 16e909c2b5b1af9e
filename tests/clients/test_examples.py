"""The storefront examples in examples/ run against a live server: the shopper's A/B arm,
a try-on with an API key (the image saved), the order recorded; a wrong key is a clear
error. Node.js runs where it is installed (npm fetches @grpc/grpc-js), Go where `go`,
`protoc` and its Go plugins are."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from clients_live import ROOT, LiveServer
from PIL import Image

NODE_EXAMPLE = ROOT / "examples" / "node"
GO_EXAMPLE = ROOT / "examples" / "go"


@pytest.fixture(scope="module")
def node() -> str:
    """The node executable, with the example's packages installed (node_modules, ignored)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("Node.js and npm are not installed: the Node.js example was not run")
    installed = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"],
        cwd=NODE_EXAMPLE,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if installed.returncode != 0:
        pytest.skip(f"npm ci failed (is the registry reachable?): {installed.stderr[-800:]}")
    return node


def example_env(live: LiveServer, api_key: str) -> dict[str, str]:
    return {
        **os.environ,
        "TRYON_TARGET": live.target,
        "TRYON_API_KEY": api_key,
        "TRYON_EXPERIMENT": live.experiment,
    }


def assert_saved_try_on(out: Path, photo: Path) -> None:
    with Image.open(io.BytesIO(out.read_bytes())) as result, Image.open(photo) as sent:
        assert (result.format, result.size) == ("JPEG", sent.size)


def test_the_node_example_assigns_tries_on_and_records_the_order(node, live_server, tmp_path):
    out = tmp_path / "tryon.jpg"
    ran = subprocess.run(
        [node, "storefront.js", str(live_server.photo), live_server.sku, str(out)],
        cwd=NODE_EXAMPLE,
        env=example_env(live_server, live_server.api_key),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    assert_saved_try_on(out, live_server.photo)
    lines = ran.stdout.splitlines()
    assert lines[0] in ("arm: control", "arm: tryon")
    assert lines[-1] == "events stored: 1, duplicates: 0"


def test_the_node_example_names_a_wrong_key_without_showing_it(node, live_server, tmp_path):
    wrong = "tryon_00000000_" + "x" * 43
    ran = subprocess.run(
        [node, "storefront.js", str(live_server.photo), live_server.sku, str(tmp_path / "o.jpg")],
        cwd=NODE_EXAMPLE,
        env=example_env(live_server, wrong),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 1
    assert "UNAUTHENTICATED" in ran.stderr and wrong not in ran.stderr + ran.stdout
    assert not (tmp_path / "o.jpg").exists()


@pytest.fixture(scope="module")
def go_example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A built copy of the Go example (stubs generated, modules fetched), outside the
    checkout so that `go mod tidy` leaves the committed go.mod alone."""
    tools = ("go", "protoc", "protoc-gen-go", "protoc-gen-go-grpc")
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"the Go example needs {', '.join(missing)} on PATH: not run")
    copy = tmp_path_factory.mktemp("go")
    (copy / "proto").symlink_to(ROOT / "proto")
    example = copy / "examples" / "go"
    shutil.copytree(GO_EXAMPLE, example, ignore=shutil.ignore_patterns("gen"))
    steps = (["go", "generate", "./..."], ["go", "mod", "tidy"], ["go", "build", "-o", "app", "."])
    for step in steps:
        done = subprocess.run(step, cwd=example, capture_output=True, text=True, timeout=600)
        if done.returncode != 0 and step[1] == "mod":
            pytest.skip(f"go mod tidy could not fetch the modules: {done.stderr[-800:]}")
        assert done.returncode == 0, f"{' '.join(step)}: {done.stderr}"
    return example / "app"


def test_the_go_example_assigns_tries_on_and_records_the_order(go_example, live_server, tmp_path):
    out = tmp_path / "tryon.jpg"
    ran = subprocess.run(
        [go_example, str(live_server.photo), live_server.sku, str(out)],
        env=example_env(live_server, live_server.api_key),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    assert_saved_try_on(out, live_server.photo)
    lines = ran.stdout.splitlines()
    assert lines[0] in ("arm: control", "arm: tryon")
    assert lines[-1] == "events stored: 1, duplicates: 0"
