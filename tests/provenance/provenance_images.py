"""Photo-like test images for the provenance tests (no real photos in the repository)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def photo_like(seed: int, size: tuple[int, int] = (256, 192)) -> np.ndarray:
    """An RGB `(H, W, 3)` uint8 image with a photo's structure: a light, partly clipped
    backdrop, a few soft-edged shapes of different colours, fine texture and noise."""
    rng = np.random.default_rng(seed)
    height, width = size
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    image = np.empty((height, width, 3))
    image[:] = 235 + 25 * rng.random(3)  # near-white studio backdrop, some of it at 255
    image += (20 * (x - 0.5))[..., None] * rng.uniform(-1, 1, 3)
    for _ in range(6):
        cy, cx, ry, rx = rng.uniform(0.1, 0.9, 2).tolist() + rng.uniform(0.05, 0.3, 2).tolist()
        inside = ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2
        weight = np.clip(4 * (1 - inside), 0, 1)[..., None]
        image = image * (1 - weight) + weight * rng.uniform(20, 230, 3)
    image += 6 * np.sin(40 * x + 25 * y)[..., None] + rng.normal(0, 3, image.shape)
    return np.clip(image, 0, 255).round().astype(np.uint8)


def encode(image: np.ndarray, fmt: str = "JPEG", **options) -> bytes:
    """Encode an RGB array with Pillow (`fmt` JPEG, PNG or WEBP)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, fmt, **options)
    return buffer.getvalue()


def shop_treatment(data: bytes) -> bytes:
    """What a shop does to a try-on: decode, shrink 0.5x, save as JPEG quality 70."""
    picture = Image.open(io.BytesIO(data)).convert("RGB")
    picture = picture.resize((picture.width // 2, picture.height // 2), Image.Resampling.BICUBIC)
    return encode(np.asarray(picture), "JPEG", quality=70)
