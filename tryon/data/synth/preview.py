"""A contact sheet of synthetic samples: person, garment, parse map and keypoints."""

from __future__ import annotations

import cv2
import numpy as np

from tryon import labels as L
from tryon.data.synth.sample import SynthSample


def draw_keypoints(image: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """The skeleton over a copy of `image` `(H, W, 3)` uint8; hidden keypoints in yellow."""
    out = image.copy()
    radius = max(2, image.shape[0] // 128)
    for a, b in L.SKELETON:
        if keypoints[a, 2] > 0 and keypoints[b, 2] > 0:
            pa = tuple(int(round(v)) for v in keypoints[a, :2])
            pb = tuple(int(round(v)) for v in keypoints[b, :2])
            cv2.line(out, pa, pb, (40, 220, 60), 1, cv2.LINE_AA)
    for x, y, c in keypoints:
        if c > 0:
            colour = (230, 30, 30) if c >= 1 else (250, 220, 0)
            cv2.circle(out, (int(round(x)), int(round(y))), radius, colour, -1, cv2.LINE_AA)
    return out


def colour_parse(parse: np.ndarray) -> np.ndarray:
    """The label map `(H, W)` in the LIP palette colours, `(H, W, 3)` uint8."""
    return np.array(L.PARSE_PALETTE, np.uint8)[parse]


def preview_sheet(samples: list[SynthSample], per_row: int = 4) -> np.ndarray:
    """Tiles of (person, garment, parse, keypoints), `per_row` samples a row; RGB uint8."""
    tiles = [
        np.hstack([s.person, s.cloth, colour_parse(s.parse), draw_keypoints(s.person, s.keypoints)])
        for s in samples
    ]
    gap = np.full((tiles[0].shape[0], 6, 3), 255, np.uint8)
    rows = []
    for start in range(0, len(tiles), per_row):
        row = tiles[start : start + per_row]
        row += [np.full_like(tiles[0], 255)] * (per_row - len(row))
        rows.append(np.hstack([part for tile in row for part in (tile, gap)][:-1]))
    return np.vstack(rows)
