"""The image's pinned runtime dependencies: `python -m tryon.deploy.constraints > constraints.txt`.

Starts from pyproject.toml's `[project] dependencies` (no extras), walks the installed
distributions' requirements and prints each package of the closure at its installed
version. Torch's CUDA runtime packages are left
out: the Dockerfile installs torch from the PyTorch index of the chosen variant (CPU
wheels need none; CUDA wheels bring their own pins).
"""

from __future__ import annotations

import importlib.metadata as metadata
import re
from pathlib import Path

from packaging.requirements import Requirement

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, as the `tomli` package
    import tomli as tomllib

# Installed beside a CUDA build of torch only.
VARIANT_ONLY = re.compile(r"^(nvidia-.*|cuda-.*|triton)$")


def normalise(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def project_requirements(pyproject: Path = Path("pyproject.toml")) -> list[Requirement]:
    """The `[project] dependencies` of `pyproject`."""
    with pyproject.open("rb") as file:
        return [Requirement(text) for text in tomllib.load(file)["project"]["dependencies"]]


def runtime_pins(pyproject: Path = Path("pyproject.toml")) -> dict[str, str]:
    """{name: installed version} of everything the project needs at run time."""
    pins: dict[str, str] = {}
    pending = [requirement.name for requirement in project_requirements(pyproject)]
    while pending:
        name = pending.pop()
        key = normalise(name)
        if key in pins:
            continue
        try:
            distribution = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # a requirement for another platform or Python
        pins[key] = distribution.version
        for text in distribution.requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    return {name: version for name, version in sorted(pins.items()) if not VARIANT_ONLY.match(name)}


def main() -> None:
    """Print constraints.txt."""
    print("# Runtime dependencies of the tryon image, pinned (pip install -c constraints.txt).")
    print("# Regenerate from an environment where tests pass:")
    print("#   python -m tryon.deploy.constraints > constraints.txt")
    for name, version in runtime_pins().items():
        print(f"{name}=={version.split('+')[0]}")


if __name__ == "__main__":
    main()
