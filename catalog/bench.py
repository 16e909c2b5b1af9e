"""Benchmarks: mask quality on synthetic garments and import speed per database.

``catalog bench masks`` and ``catalog bench import`` print these; the functions here do
the measuring.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import text
from sqlalchemy.engine import make_url

from catalog.csvfiles import parse_import_file
from catalog.database import create_catalog_engine, make_sessionmaker, upgrade, url_with_schema
from catalog.importer import run_import
from catalog.masks import extract_mask
from catalog.samples import garment_renderer, write_samples


@dataclass(frozen=True)
class MaskBenchmark:
    """Intersection over union of extracted and true masks over ``count`` garments."""

    count: int
    mean_iou: float
    worst_iou: float
    milliseconds_per_mask: float


@dataclass(frozen=True)
class ImportBenchmark:
    """Garments imported per second (mask extraction included) into one database."""

    database: str
    count: int
    failed: int
    seconds: float

    @property
    def per_second(self) -> float:
        """Throughput in garments per second."""
        return self.count / self.seconds


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two masks (nonzero = inside); 1 when both are empty."""
    inside_a, inside_b = a > 0, b > 0
    union = np.logical_or(inside_a, inside_b).sum()
    return float(np.logical_and(inside_a, inside_b).sum() / union) if union else 1.0


def benchmark_masks(count: int = 200, seed: int = 0) -> MaskBenchmark:
    """Extract masks from ``count`` synthetic garments and compare with their exact masks."""
    render = garment_renderer()
    scores, elapsed = [], 0.0
    for index in range(count):
        photo, truth = render(seed, index)
        start = time.perf_counter()
        mask = extract_mask(photo)
        elapsed += time.perf_counter() - start
        scores.append(iou(mask, truth))
    return MaskBenchmark(
        count, float(np.mean(scores)), float(np.min(scores)), elapsed / count * 1000
    )


def benchmark_import(
    url: str | None, count: int = 1000, seed: int = 0, jobs: int = 1
) -> ImportBenchmark:
    """Import ``count`` generated garments into a scratch database and time it.

    ``url`` None means a new SQLite file in a temporary folder; a PostgreSQL URL gets a
    scratch schema that is dropped afterwards, so no real catalog is touched. Rendering
    the garments is not timed; reading, checking, mask extraction and writing are.
    """
    with tempfile.TemporaryDirectory(prefix="catalog-bench-") as tmp:
        folder = Path(tmp)
        sheet = write_samples(folder / "garments", count, seed)
        parsed = parse_import_file(sheet.read_bytes())
        schema = None
        if url is None:
            url = f"sqlite:///{folder / 'bench.db'}"
        elif make_url(url).get_backend_name() == "postgresql":
            schema = f"catalog_bench_{uuid.uuid4().hex[:12]}"
            admin = create_catalog_engine(url)
            with admin.begin() as connection:
                connection.execute(text(f'CREATE SCHEMA "{schema}"'))
            url = url_with_schema(url, schema)
        engine = create_catalog_engine(url)
        try:
            upgrade(engine)
            start = time.perf_counter()
            report = run_import(make_sessionmaker(engine), parsed, sheet.parent, jobs=jobs)
            seconds = time.perf_counter() - start
        finally:
            engine.dispose()
            if schema is not None:
                with admin.begin() as connection:
                    connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                admin.dispose()
    name = make_url(url).get_backend_name()
    return ImportBenchmark(name, count, report.counts["failed"], seconds)
