"""Thin-plate-spline mappings between 2-D point sets, in numpy, for the data generator.

The generator deforms garments from their flat product layout onto the body. It needs,
for every output pixel, where to sample the flat garment: a backward map. `backward_map`
fits a TPS that sends body-space points to garment-space points and evaluates it on a
coarse grid (a TPS is smooth, so bilinear upsampling of the coarse grid is exact enough)
to give `cv2.remap` its maps.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np


def _kernel(r2: np.ndarray) -> np.ndarray:
    """The TPS radial basis U(r) = r^2 log r^2, with U(0) = 0."""
    return np.where(r2 > 0, r2 * np.log(np.maximum(r2, 1e-12)), 0.0)


def fit_tps(src: np.ndarray, dst: np.ndarray, smoothing: float = 1e-3) -> np.ndarray:
    """Fit a TPS f with f(src[i]) ~= dst[i].

    Args:
        src: `(N, 2)` control points (x, y) in any unit; scale them to ~1 for conditioning.
        dst: `(N, 2)` target points.
        smoothing: ridge term on the kernel diagonal, so near-duplicate points stay stable.

    Returns:
        `(N + 3, 2)` coefficients: N kernel weights followed by the affine part.
    """
    n = src.shape[0]
    k = _kernel(((src[:, None, :] - src[None, :, :]) ** 2).sum(-1)) + smoothing * np.eye(n)
    p = np.hstack([np.ones((n, 1)), src])
    a = np.zeros((n + 3, n + 3))
    a[:n, :n] = k
    a[:n, n:] = p
    a[n:, :n] = p.T
    b = np.zeros((n + 3, 2))
    b[:n] = dst
    return np.linalg.solve(a, b)


def apply_tps(coef: np.ndarray, src: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Evaluate the TPS fitted on control points `src` at `points` `(M, 2)` -> `(M, 2)`."""
    n = src.shape[0]
    k = _kernel(((points[:, None, :] - src[None, :, :]) ** 2).sum(-1))
    return k @ coef[:n] + coef[n] + points @ coef[n + 1 :]


def backward_map(
    body_points: np.ndarray,
    garment_points: np.ndarray,
    out_size: tuple[int, int],
    step: int = 8,
    origin: tuple[int, int] = (0, 0),
    unit: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Maps for `cv2.remap` that pull garment-space pixels onto body space.

    Args:
        body_points: `(N, 2)` landmarks (x, y) in output (body) pixels.
        garment_points: `(N, 2)` the same landmarks in garment-image pixels.
        out_size: (height, width) of the output window.
        step: spacing in pixels of the grid the TPS is evaluated on before upsampling.
        origin: (x, y) of the window's top-left pixel in output coordinates.
        unit: pixels per unit for fitting (default: the window's larger side); keep it the
            same for all windows of one image so the spline's stiffness is the same.

    Returns:
        map_x, map_y: `(H, W)` float32 garment-image coordinates for every window pixel.
    """
    height, width = out_size
    scale = float(unit or max(height, width))
    coef = fit_tps(body_points / scale, garment_points / scale)
    gh, gw = height // step + 2, width // step + 2
    ys, xs = np.mgrid[0:gh, 0:gw].astype(np.float64) * step
    grid = np.stack([xs.ravel() + origin[0], ys.ravel() + origin[1]], axis=1)
    mapped = apply_tps(coef, body_points / scale, grid / scale) * scale
    coarse = mapped.reshape(gh, gw, 2).astype(np.float32)
    # Bilinear upsampling with coarse sample g at output pixel g * step (remap's convention).
    fine_x, fine_y = _fine_grid(height, width, step)
    full = cv2.remap(coarse, fine_x, fine_y, cv2.INTER_LINEAR)
    return np.ascontiguousarray(full[..., 0]), np.ascontiguousarray(full[..., 1])


@functools.lru_cache(maxsize=8)
def _fine_grid(height: int, width: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Coarse-grid coordinates of every output pixel, `(H, W)` float32 each."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32) / step
    return xs, ys
