"""Fixtures: the overlays rendered once with `kubectl kustomize`, and a running server (tiny
networks, SQLite catalog) whose /metrics the manifests are checked against."""

from __future__ import annotations

import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tryon.deploy.manifests import Manifest, render

sys.path.insert(0, str(Path(__file__).parents[1] / "server"))
from k8s_paths import K8S, OVERLAYS  # noqa: E402
from loopback import loopback_settings, make_catalog, shopper, tiny_pipeline  # noqa: E402

from tryon.client import TryOnClient  # noqa: E402
from tryon.server.app import ServerThread  # noqa: E402


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[Manifest]]:
    """Each overlay's objects, by overlay name."""
    return {name: render(K8S / "overlays" / name) for name in OVERLAYS}


@pytest.fixture(scope="session")
def metrics_page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The /metrics text of a running server that has answered one try-on."""
    url = f"sqlite:///{tmp_path_factory.mktemp('k8s-catalog') / 'catalog.db'}"
    make_catalog(url)
    settings = loopback_settings(url, warmup=False)
    with ServerThread(settings, tiny_pipeline()) as running:
        with TryOnClient(running.target, timeout_s=30) as client:
            client.try_on(shopper(0), "TEST-0")
        page = f"http://127.0.0.1:{running.server.metrics_port}/metrics"
        yield urllib.request.urlopen(page, timeout=5).read().decode()
