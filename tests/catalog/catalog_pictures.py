"""Product photos drawn for tests: garments with exact masks, and broken image files."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

SIZE = (256, 192)  # (height, width)


def tshirt_mask(size: tuple[int, int] = SIZE, shift: int = 0) -> np.ndarray:
    """A T-shirt outline ``(H, W)`` uint8 {0, 255} with a neckline notch."""
    height, width = size
    points = np.array(
        [
            (0.38, 0.15),
            (0.45, 0.15),
            (0.5, 0.2),
            (0.55, 0.15),
            (0.62, 0.15),
            (0.85, 0.3),
            (0.78, 0.42),
            (0.7, 0.36),
            (0.7, 0.85),
            (0.3, 0.85),
            (0.3, 0.36),
            (0.22, 0.42),
            (0.15, 0.3),
        ]
    ) * [width, height]
    mask = np.zeros(size, np.uint8)
    cv2.fillPoly(mask, [np.round(points + [shift, 0]).astype(np.int32)], 255)
    return mask


def product_photo(
    mask: np.ndarray,
    colour: tuple[int, int, int] = (40, 90, 200),
    background: int = 245,
    shadow: float = 0.25,
    seed: int = 0,
) -> np.ndarray:
    """The garment ``mask`` in ``colour`` on a plain background with a soft drop shadow.

    Fabric gets a faint texture, as real cloth has; the background stays smooth.
    """
    rng = np.random.default_rng(seed)
    garment = mask.astype(np.float32) / 255
    height, width = mask.shape
    offset = np.float32([[1, 0, 4], [0, 1, 7]])
    drop = cv2.GaussianBlur(cv2.warpAffine(garment, offset, (width, height)), (0, 0), 6)
    photo = np.full((height, width, 3), float(background), np.float32)
    photo *= 1 - shadow * drop[..., None]
    texture = cv2.GaussianBlur(rng.normal(0, 1, (height, width)).astype(np.float32), (0, 0), 1)
    cloth = np.array(colour, np.float32) * (1 + 0.05 * texture[..., None])
    photo = photo * (1 - garment[..., None]) + cloth * garment[..., None]
    return np.clip(photo + 0.5, 0, 255).astype(np.uint8)


def encode(pixels: np.ndarray | Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    """Image bytes in ``fmt``."""
    image = pixels if isinstance(pixels, Image.Image) else Image.fromarray(pixels)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def write_photo(path: Path, seed: int = 0, colour: tuple[int, int, int] = (40, 90, 200)) -> Path:
    """Write a T-shirt product photo as PNG to ``path``."""
    path.write_bytes(encode(product_photo(tshirt_mask(shift=seed % 7), colour, seed=seed)))
    return path
