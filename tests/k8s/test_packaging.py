"""What the image is built from: a wheel with the synthetic weights and without the
research ones, dependencies pinned consistently with pyproject.toml, a slim non-root
multi-stage Dockerfile."""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
import sys
import zipfile

import pytest
from k8s_paths import ROOT
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from tryon import pipeline
from tryon.deploy import constraints
from tryon.deploy.constraints import tomllib
from tryon.errors import WeightsError


def test_the_wheel_ships_the_synthetic_weights_and_never_the_research_ones(tmp_path):
    source = tmp_path / "source"  # a clean tree: no stale build/ folder of the checkout
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source)
    for name in ("tryon", "catalog", "proto"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path / "dist"), str(source)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("tryon-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    synthetic = {n for n in names if n.startswith("tryon/weights/synthetic/")}
    assert "tryon/weights/synthetic/pipeline.json" in synthetic
    assert {n.rsplit("/", 1)[-1] for n in synthetic} >= {"config.json", "model.safetensors"}
    assert not [n for n in names if n.startswith("tryon/weights/viton")]
    assert "catalog/alembic.ini" in names or any(n.startswith("catalog/migrations/") for n in names)


def test_asking_for_absent_research_weights_says_how_to_get_them(tmp_path, monkeypatch):
    installed = tmp_path / "weights"
    shutil.copytree(ROOT / "tryon/weights/synthetic", installed / "synthetic")
    monkeypatch.setattr(pipeline, "BUNDLED_WEIGHTS", installed)  # as in the wheel
    monkeypatch.delenv("TRYON_WEIGHTS", raising=False)
    assert pipeline.weights_folder("synthetic") == installed / "synthetic"
    with pytest.raises(WeightsError) as missing:
        pipeline.weights_folder("viton")
    message = str(missing.value)
    assert "research-only" in message and "checkout" in message
    assert "--weights /weights/viton" in message


def test_constraints_pin_every_runtime_dependency_within_pyproject():
    with (ROOT / "pyproject.toml").open("rb") as file:
        required = [Requirement(r) for r in tomllib.load(file)["project"]["dependencies"]]
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = re.fullmatch(r"([a-z0-9-]+)==([\w.]+)", line).groups()
            pins[name] = version
    for requirement in required:
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        assert name in pins, f"{name} is not pinned in constraints.txt"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"constraints.txt pins {name}=={pins[name]}, outside pyproject's {requirement}"
        )
    assert not [n for n in pins if n.startswith(("nvidia-", "cuda-"))]  # the variant's own


def test_the_dockerfile_builds_a_slim_non_root_image_without_the_source():
    text = (ROOT / "Dockerfile").read_text()
    stages = re.split(r"^FROM ", text, flags=re.MULTILINE)[1:]
    assert len(stages) >= 3
    runtime = stages[-1]
    assert runtime.startswith("python:${PYTHON_VERSION}-slim")
    assert re.search(r"^USER 10001", runtime, re.MULTILINE)
    copies = re.findall(r"^COPY (.*)$", runtime, re.MULTILINE)
    assert copies and all(c.startswith("--from=venv ") for c in copies)  # no source copy
    assert "ARG TORCH_VARIANT=cpu" in text
    assert "download.pytorch.org/whl/${TORCH_VARIANT}" in text
    assert "-c /tmp/constraints.txt" in text
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert "tryon/weights/viton/" in ignored


def test_the_constraints_tool_reads_pyproject_with_tomli_where_python_lacks_tomllib(
    monkeypatch,
):
    """Python 3.10 (which pyproject's requires-python admits) has no tomllib."""
    stand_in = type(sys)("tomli")
    stand_in.load = tomllib.load
    monkeypatch.setitem(sys.modules, "tomllib", None)  # `import tomllib` fails as on 3.10
    monkeypatch.setitem(sys.modules, "tomli", stand_in)
    try:
        reloaded = importlib.reload(constraints)
        assert reloaded.tomllib is stand_in
        names = [r.name for r in reloaded.project_requirements(ROOT / "pyproject.toml")]
        assert "torch" in names and "grpcio" in names
    finally:
        monkeypatch.undo()
        importlib.reload(constraints)


def test_tomli_is_a_dev_dependency_on_every_python_without_tomllib():
    with (ROOT / "pyproject.toml").open("rb") as file:
        project = tomllib.load(file)["project"]
    requires = SpecifierSet(project["requires-python"])
    dev = [Requirement(r) for r in project["optional-dependencies"]["dev"]]
    tomli = [r for r in dev if r.name == "tomli"]
    for minor in range(8, 14):
        version = f"3.{minor}"
        if not requires.contains(f"{version}.0"):
            continue
        environment = {"python_version": version, "extra": "dev"}
        wanted = minor < 11
        got = any(r.marker is None or r.marker.evaluate(environment) for r in tomli)
        assert got == wanted, f"Python {version}: tomli {'needed' if wanted else 'not needed'}"
