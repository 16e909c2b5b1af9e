"""Fixtures: a real server on an ephemeral loopback port with tiny random-weight networks
and a SQLite catalog of generated garments; clients and stubs connected to it."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
import torch
from loopback import loopback_settings, make_catalog, shopper, tiny_pipeline
from tryon_client.stubs.tryon.v2 import tryon_pb2_grpc

from tryon.client import TryOnClient
from tryon.pipeline import TryOnPipeline
from tryon.server.app import ServerThread


@pytest.fixture(scope="session")
def pipeline() -> TryOnPipeline:
    torch.set_num_threads(1)
    return tiny_pipeline()


@pytest.fixture(scope="session")
def catalog_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('catalog') / 'catalog.db'}"
    make_catalog(url)
    return url


@pytest.fixture(scope="session")
def server(pipeline: TryOnPipeline, catalog_url: str) -> Iterator[ServerThread]:
    with ServerThread(loopback_settings(catalog_url), pipeline) as running:
        yield running


@pytest.fixture()
def client(server: ServerThread) -> Iterator[TryOnClient]:
    with TryOnClient(server.target, timeout_s=30) as connection:
        yield connection


@pytest.fixture()
def stub(server: ServerThread) -> Iterator[tryon_pb2_grpc.TryOnServiceStub]:
    with grpc.insecure_channel(server.target) as channel:
        yield tryon_pb2_grpc.TryOnServiceStub(channel)


@pytest.fixture()
def photo() -> bytes:
    return shopper(0)
