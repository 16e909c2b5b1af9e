"""Sample garments for demos and benchmarks, drawn by the synthetic data generator."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from catalog.errors import CatalogError

Renderer = Callable[..., tuple[np.ndarray, np.ndarray]]


def garment_renderer() -> Renderer:
    """``tryon.data.synth.render_garment``; CatalogError when the generator is not installed."""
    try:
        from tryon.data.synth import render_garment
    except ImportError as error:
        raise CatalogError(
            f"the synthetic garment generator (tryon.data.synth) is not available: {error}"
        ) from None
    return render_garment


def write_samples(folder: Path, count: int, seed: int = 0) -> Path:
    """Render ``count`` garments as PNG photos into ``folder`` with a CSV in our format.

    Returns the CSV's path. SKUs are ``SAMPLE-<seed>-<index>``, so runs with different
    seeds never collide and a second run with the same seed changes nothing.
    """
    render = garment_renderer()
    folder.mkdir(parents=True, exist_ok=True)
    sheet = folder / "samples.csv"
    with sheet.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sku", "name", "category", "image", "brand", "tags"])
        for index in range(count):
            photo, _ = render(seed, index)
            name = f"sample-{seed}-{index:04d}.png"
            Image.fromarray(photo).save(folder / name, compress_level=1)
            writer.writerow(
                [
                    f"SAMPLE-{seed}-{index:04d}",
                    f"Sample top {index + 1}",
                    "top",
                    name,
                    "Synthetic",
                    "sample",
                ]
            )
    return sheet
