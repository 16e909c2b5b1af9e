"""Drawing primitives for the generator: polygons, capsules, ellipses, noise, colours."""

from __future__ import annotations

import colorsys

import cv2
import numpy as np

_SHIFT = 4  # cv2 fixed-point bits: polygons are drawn with 1/16 pixel precision


def _fixed(points: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(points) * (1 << _SHIFT)).astype(np.int32)


def fill_polygon(canvas: tuple[int, int], points: np.ndarray) -> np.ndarray:
    """A uint8 `(H, W)` mask with 1 inside the polygon `points` `(N, 2)` (x, y)."""
    mask = np.zeros(canvas, np.uint8)
    cv2.fillPoly(mask, [_fixed(points)], 1, cv2.LINE_8, _SHIFT)
    return mask


def polygon_window(
    canvas: tuple[int, int], points: np.ndarray
) -> tuple[tuple[slice, slice], np.ndarray] | None:
    """The polygon's bounding box on the canvas and its boolean mask inside that box, or
    None when it misses the canvas; painting a box is much cheaper than the whole canvas."""
    height, width = canvas
    if len(points) == 0:
        return None
    x0, y0 = np.maximum(np.floor(points.min(0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(points.max(0)).astype(int) + 1, (width, height))
    if x0 >= x1 or y0 >= y1:
        return None
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(mask, [_fixed(np.asarray(points) - (x0, y0))], 1, cv2.LINE_8, _SHIFT)
    return (slice(y0, y1), slice(x0, x1)), mask.astype(bool)


def paint(
    image: np.ndarray, labels: np.ndarray, points: np.ndarray, colour: np.ndarray, label: int
) -> np.ndarray:
    """Paint polygon `points` onto `image` `(H, W, 3)` and `labels` `(H, W)`; return its mask."""
    mask = fill_polygon(labels.shape, points).astype(bool)
    image[mask] = colour
    labels[mask] = label
    return mask


def capsule(p0: np.ndarray, p1: np.ndarray, r0: float, r1: float, n: int = 10) -> np.ndarray:
    """Outline `(2n + 2, 2)` of a tapered capsule from `p0` (radius r0) to `p1` (radius r1)."""
    d = np.asarray(p1, float) - np.asarray(p0, float)
    length = max(float(np.linalg.norm(d)), 1e-6)
    ux, uy = d / length
    base = np.arctan2(uy, ux)
    a1 = base + np.linspace(np.pi / 2, -np.pi / 2, n + 1)
    a0 = base + np.linspace(-np.pi / 2, -3 * np.pi / 2, n + 1)
    end = np.stack([p1[0] + r1 * np.cos(a1), p1[1] + r1 * np.sin(a1)], 1)
    start = np.stack([p0[0] + r0 * np.cos(a0), p0[1] + r0 * np.sin(a0)], 1)
    return np.vstack([end, start])


def ellipse(
    center: np.ndarray,
    half_w: float,
    half_h: float,
    angle: float = 0.0,
    start: float = 0.0,
    stop: float = 2 * np.pi,
    n: int = 32,
) -> np.ndarray:
    """Outline `(n, 2)` of an ellipse (or an arc of it, closed by its chord)."""
    t = np.linspace(start, stop, n)
    x, y = half_w * np.cos(t), half_h * np.sin(t)
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([center[0] + c * x - s * y, center[1] + s * x + c * y], 1)


def smooth_noise(rng: np.random.Generator, canvas: tuple[int, int], cell: int) -> np.ndarray:
    """Smooth random field `(H, W)` float32, roughly in [-1, 1], with features ~`cell` px."""
    height, width = canvas
    cell = max(int(cell), 1)
    coarse = rng.standard_normal((height // cell + 2, width // cell + 2)).astype(np.float32)
    field = cv2.resize(
        coarse,
        ((width // cell + 2) * cell, (height // cell + 2) * cell),
        interpolation=cv2.INTER_CUBIC,
    )
    return np.clip(field[:height, :width] * 0.5, -1, 1)


def hsv_colour(hue: float, saturation: float, value: float) -> np.ndarray:
    """RGB `(3,)` float in [0, 1] from HSV components in [0, 1]."""
    return np.array(colorsys.hsv_to_rgb(hue % 1.0, saturation, value), np.float32)


def soft_shading(mask: np.ndarray, radius: float, depth: float) -> np.ndarray:
    """A rounded look for a flat shape: 1 inside, falling by up to `depth` towards its edges.

    Args:
        mask: `(H, W)` float32 in [0, 1].
        radius: blur radius in pixels (about a third of the shape's width).
        depth: how dark the very edge gets, in [0, 1].
    """
    blurred = smooth_blur(mask, radius)
    return 1 - depth * (1 - np.clip(blurred * 2, 0, 1))


def smooth_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur for large `sigma`, computed at a quarter of the size (it is smooth
    anyway) and resized back: several times faster than blurring at full size."""
    if sigma < 6:
        return cv2.GaussianBlur(image, (0, 0), max(sigma, 0.5))
    height, width = image.shape[:2]
    small = cv2.resize(image, (width // 4, height // 4), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma / 4)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
