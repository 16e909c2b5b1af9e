"""Garment masks from product photos on white or light-grey backgrounds.

The background is modelled from the photo's border as a smooth colour surface, so a
studio's light falloff is not taken for garment. Pixels that are clearly not
background (another colour, darker than any shadow, or textured where the background
is smooth) seed the garment; pixels that match the background seed it; a watershed
on the photo settles the rest at the strongest edge in between. That keeps soft
shadows (smooth, so flooded from the background side) out of the mask and finds white
garments on white backgrounds by their sharp outline and fabric texture. Enclosed
holes such as a neck opening are filled.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

WORK_SIDE = 512  # extraction runs at most at this size; the mask is scaled back up
BORDER = 3  # pixels of frame that model the background
CHROMA_SEED = 10.0  # Lab chroma distance (8-bit Lab units) that is surely garment
DARK_SEED = 70.0  # darker than this below the background is more than any soft shadow
BRIGHT_SEED = 10.0
TEXTURE_SEED = 4.0  # local texture, in multiples of the background's own noise
CANNY_LOW = 20
CANNY_HIGH = 100
CLOSE = 3
BAND_OUT = 1
BAND_IN = 5
TEXTURE_SIGMA = 1.0
NOISE_FLOOR = 0.15


@dataclass(frozen=True)
class MaskReport:
    """What looks wrong with a garment mask; empty ``warnings`` means it looks plausible."""

    coverage: float  # fraction of the image that is garment
    pieces: int  # separate parts larger than 0.5% of the garment
    touches_border: bool
    warnings: tuple[str, ...]


def _least_squares(design: np.ndarray, values: np.ndarray) -> np.ndarray:
    # Normal equations through einsum: for a few thousand rows and six unknowns this is
    # exact enough and avoids BLAS thread start-up, which dominated extraction time.
    gram = np.einsum("ni,nj->ij", design, design)
    moment = np.einsum("ni,nc->ic", design, values)
    return np.linalg.solve(gram + np.eye(len(gram)) * 1e-9, moment)


def _quadratic_terms(u: np.ndarray, v: np.ndarray) -> list[np.ndarray]:
    """The six terms of a quadratic surface in normalized coordinates ``u``, ``v``."""
    return [np.ones_like(u * v), u, v, u * v, u * u, v * v]


def _background_surface(lab: np.ndarray) -> np.ndarray:
    """A quadratic colour surface ``(H, W, 3)`` fitted robustly to the border frame."""
    height, width = lab.shape[:2]
    frame = np.zeros((height, width), bool)
    frame[:BORDER] = frame[-BORDER:] = True
    frame[:, :BORDER] = frame[:, -BORDER:] = True
    ys, xs = np.nonzero(frame)
    design = np.stack(_quadratic_terms(xs / width - 0.5, ys / height - 0.5), axis=1)
    values = lab[ys, xs]
    keep = np.ones(len(values), bool)
    # A garment touching the border would bend the fit: drop far-off samples and refit.
    for _ in range(3):
        coef = _least_squares(design[keep], values[keep])
        residual = np.abs(values - np.einsum("ni,ic->nc", design, coef)).sum(axis=1)
        spread = max(float(np.median(residual[keep])) * 4.0, 3.0)
        keep = residual <= spread
        if keep.sum() < design.shape[1] * 4:
            break
    u = (np.arange(width, dtype=np.float32) / width - 0.5)[None, :, None]
    v = (np.arange(height, dtype=np.float32) / height - 0.5)[:, None, None]
    terms = _quadratic_terms(u, v)
    return sum(term * c.astype(np.float32) for term, c in zip(terms, coef, strict=True))


def _texture(lab_l: np.ndarray) -> np.ndarray:
    """Local high-frequency energy of the lightness: fabric has it, paper and shadows do not."""
    detail = lab_l - cv2.GaussianBlur(lab_l, (0, 0), TEXTURE_SIGMA)
    return cv2.GaussianBlur(np.abs(detail), (0, 0), TEXTURE_SIGMA)


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill every background region that does not reach the image border."""
    height, width = mask.shape
    padded = np.zeros((height + 2, width + 2), np.uint8)
    padded[1:-1, 1:-1] = mask
    flood = padded.copy()
    cv2.floodFill(flood, None, (0, 0), 255)
    holes = flood[1:-1, 1:-1] == 0
    return np.where(holes, 255, mask).astype(np.uint8)


def _drop_specks(mask: np.ndarray, min_fraction: float) -> np.ndarray:
    """Remove connected parts smaller than ``min_fraction`` of the largest part."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count <= 2:
        return mask
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.zeros(count, bool)
    keep[1:] = areas >= areas.max() * min_fraction
    return np.where(keep[labels], 255, 0).astype(np.uint8)


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def extract_mask(rgb: np.ndarray) -> np.ndarray:
    """The garment mask of a product photo.

    rgb: ``(H, W, 3)`` uint8 RGB, garment on a white or light-grey background.
    Returns ``(H, W)`` uint8 in {0, 255}, 255 on the garment.
    """
    height, width = rgb.shape[:2]
    scale = min(1.0, WORK_SIDE / max(height, width))
    work = rgb
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        work = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    lab = cv2.cvtColor(work, cv2.COLOR_RGB2LAB).astype(np.float32)
    background = _background_surface(lab)
    d_light = lab[..., 0] - background[..., 0]
    d_chroma = np.hypot(lab[..., 1] - background[..., 1], lab[..., 2] - background[..., 2])
    texture = _texture(lab[..., 0])
    frame_texture = np.concatenate(
        [
            texture[:BORDER].ravel(),
            texture[-BORDER:].ravel(),
            texture[:, :BORDER].ravel(),
            texture[:, -BORDER:].ravel(),
        ]
    )
    noise = max(float(np.median(frame_texture)), NOISE_FLOOR)

    colour = ((d_chroma > CHROMA_SEED) | (d_light > BRIGHT_SEED) | (d_light < -DARK_SEED)).astype(
        np.uint8
    )
    smooth = cv2.GaussianBlur(lab[..., 0], (0, 0), 1.0)
    edges = cv2.Canny(
        np.clip(smooth + 0.5, 0, 255).astype(np.uint8), CANNY_LOW, CANNY_HIGH, L2gradient=True
    )
    textured = (texture > TEXTURE_SEED * noise).astype(np.uint8)
    barrier = colour | textured | (edges > 0)
    barrier = cv2.morphologyEx(barrier, cv2.MORPH_CLOSE, np.ones((CLOSE, CLOSE), np.uint8))
    region = _fill_holes(_drop_specks(barrier * 255, 0.02))
    if not region.any():
        return np.zeros((height, width), np.uint8)
    markers = np.ones(work.shape[:2], np.int32)
    markers[cv2.dilate(region, _disk(BAND_OUT)) > 0] = 0
    inner = cv2.erode(region, _disk(BAND_IN)) | (colour * cv2.erode(region, _disk(BAND_OUT)))
    markers[inner > 0] = 2
    cv2.watershed(cv2.cvtColor(work, cv2.COLOR_RGB2BGR), markers)
    mask = np.where(markers == 2, 255, 0).astype(np.uint8)
    mask = _fill_holes(_drop_specks(mask, 0.02))
    if scale < 1.0:
        mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_LINEAR)
        mask = np.where(mask >= 128, 255, 0).astype(np.uint8)
    return mask


def inspect_mask(mask: np.ndarray) -> MaskReport:
    """Check a garment mask ``(H, W)`` uint8 {0, 255} for signs that it is wrong."""
    garment = mask > 0
    coverage = float(garment.mean())
    count, _, stats, _ = cv2.connectedComponentsWithStats(garment.astype(np.uint8), connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    pieces = int((areas >= max(1, garment.sum() * 0.005)).sum())
    edge = np.concatenate([garment[0], garment[-1], garment[:, 0], garment[:, -1]])
    touches = float(edge.mean()) > 0.02
    warnings: list[str] = []
    if coverage < 0.05:
        warnings.append(f"the mask covers only {coverage:.1%} of the photo")
    elif coverage > 0.9:
        warnings.append(f"the mask covers {coverage:.1%} of the photo; is the background plain?")
    if touches:
        warnings.append("the mask touches the photo's border; is the garment cut off?")
    if pieces > 2:
        warnings.append(f"the mask has {pieces} separate pieces")
    return MaskReport(coverage, pieces, touches, tuple(warnings))
