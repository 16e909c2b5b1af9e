"""What the server tests share: generated shoppers and garments, a catalog, tiny networks
and settings for a loopback server."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from catalog.database import create_catalog_engine, make_sessionmaker, upgrade
from catalog.models import Status
from catalog.onboarding import make_fields, prepare_images
from catalog.repository import save_garment, set_status
from tryon.data.synth import generate_sample, render_garment
from tryon.models import GeometricMatcher, HumanParser, PipelineMeta, TryOnGenerator
from tryon.pipeline import TryOnPipeline
from tryon.server.settings import ServerSettings

SKUS = [f"TEST-{index}" for index in range(4)]
ARCHIVED_SKU = "TEST-ARCHIVED"
DRESS_SKU = "TEST-DRESS"  # active, of a category the test weights may decline


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


def tiny_pipeline(precision: str = "auto") -> TryOnPipeline:
    """Random networks of a few channels: fast, and enough to exercise the service (save
    them from a float32 one: bfloat16 pipelines cannot be saved)."""
    torch.manual_seed(0)
    return TryOnPipeline(
        HumanParser(encoder_name="tu-regnetx_002", decoder_channels=(16, 16, 8, 8, 8)),
        GeometricMatcher(feature_channels=(8, 8, 16, 16), regressor_width=16),
        TryOnGenerator(base_channels=8, depth=4, max_channels=32),
        PipelineMeta(name="tiny", licence="test", training_data="none"),
        precision=precision,
    )


def make_catalog(url: str) -> None:
    """A catalog at `url` with the active tops SKUS, the active dress DRESS_SKU and the
    archived top ARCHIVED_SKU."""
    engine = create_catalog_engine(url)
    upgrade(engine)
    with make_sessionmaker(engine)() as session, session.begin():
        garments = [(sku, "top") for sku in [*SKUS, ARCHIVED_SKU]] + [(DRESS_SKU, "dress")]
        for index, (sku, category) in enumerate(garments):
            photo, mask = render_garment(11, index)
            images = prepare_images(png(photo), png(mask)).images
            fields = make_fields(sku, f"{category} {index}", category)
            save_garment(session, fields, images, activate=True)
        set_status(session, [ARCHIVED_SKU], Status.ARCHIVED)
    engine.dispose()


def loopback_settings(catalog_url: str, **changes) -> ServerSettings:
    """Settings for a test server: free ports, no drain, any confidence, one thread,
    reflection on."""
    values = dict(
        host="127.0.0.1",
        port=0,
        metrics_port=0,
        database_url=catalog_url,
        min_confidence=0.0,
        drain_s=0.0,
        grace_s=5.0,
        max_batch=8,
        max_wait_ms=10.0,
        workers=1,
        reflection=True,
    )
    return ServerSettings(**{**values, **changes})


def run_cli(args: list[str]) -> int:
    """Run `tryon ARGS` as the console script does (errors printed, exit codes mapped);
    return its exit status."""
    from tryon.cli import main

    try:
        main(args)
    except SystemExit as exit_info:
        return exit_info.code or 0
    return 0
