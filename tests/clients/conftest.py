"""Fixtures: a live server on a loopback port (tiny random-weight networks, a SQLite catalog
of generated garments, API keys, a running A/B experiment) for the clients and examples
that run outside this process."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "server"))
from clients_live import EXPERIMENT, LiveServer  # noqa: E402
from loopback import loopback_settings, make_catalog, shopper, tiny_pipeline  # noqa: E402

from catalog.database import create_catalog_engine, make_sessionmaker  # noqa: E402
from tryon.experiments import store  # noqa: E402
from tryon.server.app import ServerThread  # noqa: E402
from tryon.server.auth import add_key  # noqa: E402


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("live")
    url = f"sqlite:///{folder / 'catalog.db'}"
    make_catalog(url)
    engine = create_catalog_engine(url)
    with make_sessionmaker(engine).begin() as session:
        store.create_experiment(session, EXPERIMENT, [("control", 50), ("tryon", 50)])
        store.start_experiment(session, EXPERIMENT)
    engine.dispose()
    key = add_key(folder / "keys.json", "storefront")
    photo = folder / "shopper.jpg"
    photo.write_bytes(shopper(0))
    settings = loopback_settings(
        url, warmup=False, api_keys_file=str(folder / "keys.json"), api_keys_reload_s=0.0
    )
    with ServerThread(settings, tiny_pipeline()) as running:
        yield LiveServer(running.target, key, EXPERIMENT, photo)
