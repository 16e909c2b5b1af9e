"""`tryon demo`: the whole product on one machine, with nothing configured.

Creates a SQLite catalog of generated sample garments, starts the gRPC server in this
process on a free loopback port, sends generated shopper photos through the real client
(TryOnMany: several garments per photo, the person analysed once), writes a contact
sheet and prints per-request timings, runs a small simulated A/B test on return rates
through the same server and writes its report beside the sheet, then stops the server.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from tryon.errors import TryOnError, WeightsError

SAMPLE_SEED = 0  # the generator seed of the sample garments (SKUs SAMPLE-0-0000, ...)
SHOPPER_SEED = 101  # shoppers are drawn from another seed than the garments they try on
PHOTO_SIZE = (512, 384)  # height, width of the shopper photos sent
TILE = (256, 192)  # height, width of one picture on the sheet
DEMO_EXPERIMENT = "demo"  # the A/B test the demo runs through the experiment service
DEMO_UNITS = 600  # simulated shoppers it sends (a few seconds)


@dataclass
class ShopperResult:
    """What one TryOnMany call brought back for one shopper photo."""

    photo: np.ndarray
    images: dict[str, np.ndarray] = field(default_factory=dict)
    refused: str | None = None
    rows: list[dict] = field(default_factory=list)


def sample_sku(index: int, seed: int = SAMPLE_SEED) -> str:
    """The SKU the sample garment `index` gets (as `catalog load-samples` names them)."""
    return f"SAMPLE-{seed}-{index:04d}"


def build_sample_catalog(path: Path, count: int, seed: int = SAMPLE_SEED) -> str:
    """Create (or update) a SQLite catalog at `path` with `count` active sample garments,
    using the generator's exact garment masks; return its URL."""
    from catalog.database import create_catalog_engine, make_sessionmaker, upgrade
    from catalog.onboarding import make_fields, prepare_images
    from catalog.repository import save_garment
    from tryon.data.synth import render_garment

    path.parent.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{path.resolve()}"
    engine = create_catalog_engine(url)
    try:
        upgrade(engine)
        with make_sessionmaker(engine)() as session, session.begin():
            for index in range(count):
                photo, mask = render_garment(seed, index)
                images = prepare_images(_png(photo), _png(mask)).images
                fields = make_fields(
                    sample_sku(index, seed), f"Sample top {index + 1}", "top", brand="Synthetic"
                )
                save_garment(session, fields, images, activate=True)
    finally:
        engine.dispose()
    return url


def run_demo(
    out: Path,
    *,
    shoppers: int = 3,
    garments: int = 4,
    weights: str | None = None,
    echo: Callable[[str], None] = print,
) -> Path:
    """Run the demo, writing the catalog and the sheet into `out`; return the sheet's path."""
    from tryon.client import ServiceError, TryOnClient
    from tryon.data.synth import generate_sample, render_garment
    from tryon.pipeline import weights_folder
    from tryon.server.app import ServerThread
    from tryon.server.settings import ServerSettings

    try:
        folder = weights_folder(weights)
    except WeightsError as error:  # say so before anything starts
        raise WeightsError(
            f"{error}. The demo needs trained weights: bundle them (see README) or pass "
            "--weights DIR / set TRYON_WEIGHTS"
        ) from None
    logging.getLogger("tryon").setLevel(logging.WARNING)
    echo(f"weights: {folder}")
    url = build_sample_catalog(out / "catalog.db", garments)
    skus = [sample_sku(index) for index in range(garments)]
    echo(f"catalog: {garments} sample garments in {out / 'catalog.db'}")
    settings = ServerSettings.load(
        host="127.0.0.1",
        port=0,
        metrics_port=-1,
        database_url=url,
        weights=str(folder),
        drain_s=0.0,
    )
    started = time.perf_counter()
    results = []
    with ServerThread(settings) as running, TryOnClient(running.target) as client:
        echo(f"server: SERVING on {running.target} after {time.perf_counter() - started:.1f} s")
        echo(f"{'shopper':>7}  {'garment':<14} {'total ms':>8}  server stages (ms)")
        for index in range(shoppers):
            photo = generate_sample(SHOPPER_SEED, index, PHOTO_SIZE).person
            result = ShopperResult(photo)
            sent = time.perf_counter()
            try:
                # The demo's shoppers are units of the demo experiment: their try-ons count.
                for response in client.try_on_many(_jpeg(photo), skus, unit_id=f"unit-{index}"):
                    elapsed = (time.perf_counter() - sent) * 1e3
                    result.images[response.garment_sku] = np.asarray(
                        Image.open(io.BytesIO(response.image)).convert("RGB")
                    )
                    echo(
                        f"{index:>7}  {response.garment_sku:<14} {elapsed:>8.0f}  "
                        + _stages(response.timings_ms)
                    )
            except ServiceError as error:
                result.refused = error.message
                echo(f"{index:>7}  refused: {error}")
            results.append(result)
        report = run_demo_experiment(running.target, url, skus, out, echo)
    garment_photos = [render_garment(SAMPLE_SEED, index)[0] for index in range(garments)]
    sheet = out / "tryon_sheet.png"
    contact_sheet(garment_photos, skus, results).save(sheet)
    dressed = sum(len(r.images) for r in results)
    if dressed == 0:
        raise TryOnError(
            f"the server refused every shopper photo (first reason: {results[0].refused}); "
            "are the weights trained? See docs/service.md"
        )
    echo(f"wrote {sheet}: {dressed} try-ons of {shoppers} shoppers")
    echo(f"wrote {report}: the demo A/B test on return rates")
    return sheet


def run_demo_experiment(
    target: str, database_url: str, skus: list[str], out: Path, echo: Callable[[str], None]
) -> Path:
    """A small A/B test through the running server's experiment service.

    Simulated shoppers (the demo's own among them) are assigned, their orders of the
    catalog's `skus` and their returns sent, and the report written to
    OUT/experiment_report.html; the path is returned. A rerun sends the same events
    again, which are stored once.
    """
    from catalog.database import create_catalog_engine, make_sessionmaker
    from tryon.client import ExperimentClient
    from tryon.experiments.errors import ExperimentExistsError
    from tryon.experiments.html import render_html
    from tryon.experiments.report import build_report, summary
    from tryon.experiments.simulation import Shoppers
    from tryon.experiments.store import create_experiment, get_experiment, start_experiment
    from tryon.experiments.tables import ExperimentStatus
    from tryon.experiments.traffic import send_traffic

    engine = create_catalog_engine(database_url)
    sessions = make_sessionmaker(engine)
    try:
        # A rerun of the demo goes on with the same experiment.
        with sessions.begin() as session, contextlib.suppress(ExperimentExistsError):
            create_experiment(session, DEMO_EXPERIMENT, [("control", 50), ("tryon", 50)])
        with sessions.begin() as session:
            if get_experiment(session, DEMO_EXPERIMENT).status is ExperimentStatus.DRAFT:
                start_experiment(session, DEMO_EXPERIMENT)
        with ExperimentClient(target) as client:
            shoppers = Shoppers(conversion=0.3, skus=tuple(skus))
            sent = send_traffic(client, DEMO_EXPERIMENT, DEMO_UNITS, shoppers, effect=-0.15)
        with sessions.begin() as session:
            page = render_html(session, DEMO_EXPERIMENT)
            outcome = summary(build_report(session, DEMO_EXPERIMENT))
    finally:
        engine.dispose()
    path = out / "experiment_report.html"
    path.write_text(page)
    echo(f"experiment {DEMO_EXPERIMENT}: {sent['units']} shoppers, {sent['stored']} new events")
    echo(outcome)
    return path


def contact_sheet(
    garment_photos: list[np.ndarray], skus: list[str], results: list[ShopperResult]
) -> Image.Image:
    """A grid: the garments across the top, then one row per shopper (photo, then the
    shopper in each garment; a grey tile where the server refused)."""
    height, width = TILE
    columns = len(skus) + 1
    sheet = Image.new("RGB", (columns * width, (len(results) + 1) * height), "white")
    draw = ImageDraw.Draw(sheet)
    for column, (garment, sku) in enumerate(zip(garment_photos, skus, strict=True), start=1):
        sheet.paste(_tile(garment), (column * width, 0))
        draw.text((column * width + 4, 4), sku, fill="black")
    for row, result in enumerate(results, start=1):
        sheet.paste(_tile(result.photo), (0, row * height))
        for column, sku in enumerate(skus, start=1):
            image = result.images.get(sku)
            tile = _tile(image) if image is not None else Image.new("RGB", (width, height), "grey")
            sheet.paste(tile, (column * width, row * height))
    return sheet


def _stages(timings: dict[str, float]) -> str:
    """The server's stage timings in a short line: the analysis (frame + parse) together;
    absent when the person came from the cache."""
    analyse = timings.get("frame", 0.0) + timings.get("parse", 0.0)
    shown = {
        "queue": timings.get("queue", 0.0),
        "analyse": analyse,
        "warp": timings.get("warp", 0.0),
        "synth": timings.get("synthesize", 0.0),
        "paste": timings.get("paste_back", 0.0),
        "encode": timings.get("encode", 0.0),
    }
    return " ".join(f"{name} {ms:.0f}" for name, ms in shown.items())


def _tile(image: np.ndarray) -> Image.Image:
    picture = Image.fromarray(image)
    picture.thumbnail((TILE[1], TILE[0]), Image.Resampling.LANCZOS)
    tile = Image.new("RGB", (TILE[1], TILE[0]), "white")
    tile.paste(picture, ((TILE[1] - picture.width) // 2, (TILE[0] - picture.height) // 2))
    return tile


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _jpeg(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()
