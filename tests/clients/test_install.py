"""The client installs and works without PyTorch: its wheel, built from clients/python, goes
into a fresh virtualenv with only its declared dependencies (from the package index, at
the versions installed here), and calls a live server from there."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from importlib.metadata import version
from pathlib import Path

import pytest
from clients_live import ROOT

DEPENDENCIES = ("grpcio", "protobuf", "googleapis-common-protos")

# Run by the fresh virtualenv's Python: import the client, call every kind of RPC, report.
CALLS = """
import asyncio, importlib.util, json, sys, time
start = time.perf_counter()
import tryon_client
imported_s = time.perf_counter() - start
from tryon_client import AsyncTryOnClient, ExperimentClient, TryOnClient, purchase_event

target, key, photo_file, sku, experiment = sys.argv[1:]
photo = open(photo_file, "rb").read()
report = {"import_s": imported_s, "file": tryon_client.__file__}
with TryOnClient(target, api_key=key) as client:
    response = client.try_on(photo, sku)
    report["jpeg"] = response.image[:2] == b"\\xff\\xd8" and response.garment_sku == sku
    report["supported"] = [garment.sku for garment in client.list_garments(supported_only=True)]
    report["category"] = client.get_garment(sku).category

async def try_on_many():
    async with AsyncTryOnClient(target, api_key=key) as client:
        return [response.garment_sku async for response in client.try_on_many(photo, [sku])]

report["many"] = asyncio.run(try_on_many())
with ExperimentClient(target, api_key=key) as experiments:
    report["arm"] = experiments.assign(experiment, "venv-shopper").arm
    order = purchase_event("venv-order", "venv-shopper", "venv-order", [(sku, 1, 19.9)])
    report["stored"] = experiments.record_events(experiment, [order]).stored
report["modules"] = sorted({name.split(".")[0] for name in sys.modules})
report["torch_installed"] = importlib.util.find_spec("torch") is not None
report["tryon_installed"] = importlib.util.find_spec("tryon") is not None
print(json.dumps(report))
"""


def run(*command: str | Path, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, timeout=300, **kwargs
    )


@pytest.fixture(scope="module")
def client_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Python of a fresh virtualenv holding the client's wheel and its dependencies."""
    folder = tmp_path_factory.mktemp("client-install")
    source = folder / "source"  # a clean copy: the build writes build/ and egg-info there
    ignore = shutil.ignore_patterns("__pycache__", "build", "*.egg-info")
    shutil.copytree(ROOT / "clients" / "python", source, ignore=ignore)
    built = run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
        "-w", folder / "dist", source,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = (folder / "dist").glob("tryon_client-*.whl")
    venv.create(folder / "venv", with_pip=False)
    python = folder / "venv" / "bin" / "python"
    pins = folder / "constraints.txt"
    pins.write_text("".join(f"{name}=={version(name)}\n" for name in DEPENDENCIES))
    installed = run(
        sys.executable, "-m", "pip", "--python", python, "install", "-q",
        "--disable-pip-version-check", "-c", pins, wheel,
    )  # fmt: skip
    if installed.returncode != 0:
        message = f"pip could not install the client's dependencies: {installed.stderr[-800:]}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return python


def test_the_client_installs_without_torch_and_calls_a_live_server(client_python, live_server):
    listed = run(sys.executable, "-m", "pip", "--python", client_python, "list", "--format=json")
    installed = {entry["name"].lower() for entry in json.loads(listed.stdout)}
    assert "tryon-client" in installed and "torch" not in installed and "tryon" not in installed
    assert installed >= set(DEPENDENCIES)
    site = next((client_python.parents[1] / "lib").glob("python*/site-packages"))
    megabytes = sum(f.stat().st_size for f in site.rglob("*") if f.is_file()) / 2**20
    assert megabytes < 60, f"the client and its dependencies take {megabytes:.0f} MiB"
    ran = run(
        client_python, "-I", "-c", CALLS,
        live_server.target, live_server.api_key, live_server.photo, live_server.sku,
        live_server.experiment,
        cwd=client_python.parents[2],  # not the checkout: nothing of it on sys.path
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    report = json.loads(ran.stdout)
    assert Path(report["file"]).is_relative_to(client_python.parents[1])
    assert not report["torch_installed"] and not report["tryon_installed"]
    assert "torch" not in report["modules"] and "numpy" not in report["modules"]
    assert report["jpeg"] and report["many"] == [live_server.sku]
    assert live_server.sku in report["supported"] and report["category"] == "top"
    assert report["arm"] in ("control", "tryon") and report["stored"] == 1
    assert report["import_s"] < 2.0
