"""Preview sheets: a garment's photo, its mask and the mask laid over the photo.

When the try-on pipeline and its weights are available, the garment tried on sample
shoppers is added; without them the sheet says it left those out.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

PANEL_HEIGHT = 384
GAP = 8


def overlay(photo: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The photo ``(H, W, 3)`` uint8 with the background dimmed and the mask outlined in red."""
    garment = mask > 0
    shown = photo.astype(np.float32)
    shown[~garment] = shown[~garment] * 0.35 + 255 * 0.1
    shown = shown.astype(np.uint8)
    contours, _ = cv2.findContours(garment.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(shown, contours, -1, (255, 0, 0), max(1, photo.shape[0] // 200))
    return shown


def _fit_height(image: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    size = (max(1, round(width * PANEL_HEIGHT / height)), PANEL_HEIGHT)
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def compose_sheet(panels: list[np.ndarray]) -> np.ndarray:
    """Panels ``(H, W, 3)`` uint8 side by side on white, all scaled to one height."""
    scaled = [_fit_height(p) for p in panels]
    width = sum(p.shape[1] for p in scaled) + GAP * (len(scaled) + 1)
    sheet = np.full((PANEL_HEIGHT + 2 * GAP, width, 3), 255, np.uint8)
    x = GAP
    for panel in scaled:
        sheet[GAP : GAP + PANEL_HEIGHT, x : x + panel.shape[1]] = panel
        x += panel.shape[1] + GAP
    return sheet


def garment_panels(photo: np.ndarray, mask: np.ndarray) -> list[np.ndarray]:
    """The catalog part of a sheet: photo, mask, overlay."""
    return [photo, np.repeat(mask[..., None], 3, axis=2), overlay(photo, mask)]


def tried_on_panels(
    photo: np.ndarray, mask: np.ndarray, weights: Path | None, shoppers: list[np.ndarray]
) -> tuple[list[np.ndarray], str | None]:
    """The garment tried on ``shoppers``, or no panels and the reason why not."""
    if weights is None or not shoppers:
        return [], "tried-on panels need --weights and at least one --shopper photo"
    try:
        from tryon.pipeline import TryOnPipeline
    except ImportError:
        return [], "tried-on panels left out: the try-on pipeline is not installed"
    pipeline = TryOnPipeline.from_pretrained(weights)
    return [pipeline(shopper, photo, mask) for shopper in shoppers], None
