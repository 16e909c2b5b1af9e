"""A real server on an ephemeral loopback port: tiny random-weight networks, a SQLite
catalog with a few generated garments, one torch thread."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import torch
from PIL import Image

from catalog.database import create_catalog_engine, make_sessionmaker, upgrade
from catalog.onboarding import make_fields, prepare_images
from catalog.repository import save_garment
from tryon.client import TryOnClient
from tryon.data.synth import generate_sample, render_garment
from tryon.models import GeometricMatcher, HumanParser, PipelineMeta, TryOnGenerator
from tryon.pipeline import TryOnPipeline
from tryon.server.app import ServerThread
from tryon.server.gen.tryon.v1 import tryon_pb2_grpc
from tryon.server.settings import ServerSettings

SKUS = [f"TEST-{index}" for index in range(4)]


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def shopper(index: int = 0, size: tuple[int, int] = (256, 192)) -> bytes:
    """A generated shopper photo as JPEG bytes."""
    return jpeg(generate_sample(7, index, size).person)


@pytest.fixture(scope="session")
def tiny_pipeline() -> TryOnPipeline:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    return TryOnPipeline(
        HumanParser(encoder_name="tu-regnetx_002", decoder_channels=(16, 16, 8, 8, 8)),
        GeometricMatcher(feature_channels=(8, 8, 16, 16), regressor_width=16),
        TryOnGenerator(base_channels=8, depth=4, max_channels=32),
        PipelineMeta(name="tiny", licence="test", training_data="none"),
    )


def add_garments(url: str, skus: list[str]) -> None:
    """Create the catalog schema at `url` and add active generated garments."""
    engine = create_catalog_engine(url)
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    with sessions() as session, session.begin():
        for index, sku in enumerate(skus):
            photo, mask = render_garment(11, index)
            images = prepare_images(png(photo), png(mask)).images
            save_garment(session, make_fields(sku, f"Top {index}", "top"), images, activate=True)
    engine.dispose()


@pytest.fixture(scope="session")
def catalog_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('catalog') / 'catalog.db'}"
    add_garments(url, SKUS)
    return url


def test_settings(catalog_url: str, **changes) -> ServerSettings:
    """Settings for a loopback test server: free ports, no drain, any confidence."""
    values = dict(
        host="127.0.0.1",
        port=0,
        metrics_port=0,
        database_url=catalog_url,
        min_confidence=0.0,
        drain_s=0.0,
        grace_s=5.0,
        max_batch=4,
        max_wait_ms=5.0,
        workers=1,
    )
    return ServerSettings(**{**values, **changes})


test_settings.__test__ = False  # a helper, not a test


@pytest.fixture(scope="session")
def server(tiny_pipeline: TryOnPipeline, catalog_url: str) -> Iterator[ServerThread]:
    with ServerThread(test_settings(catalog_url), tiny_pipeline) as running:
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

