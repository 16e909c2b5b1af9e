"""Sample grids for training runs: rows are batch items, columns are stages."""

from __future__ import annotations

import numpy as np
import torch

from tryon import labels as L
from tryon.data.synth.preview import draw_keypoints

MAX_ROWS = 4


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """`(B, C, H, W)` in [-1, 1] (C = 1 or 3) -> `(B, H, W, 3)` uint8."""
    images = images.detach().float().cpu()
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    return ((images.clamp(-1, 1) + 1) * 127.5 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def parse_to_rgb(parse: torch.Tensor) -> torch.Tensor:
    """Label maps `(B, H, W)` -> their palette colours `(B, 3, H, W)` in [-1, 1]."""
    palette = torch.tensor(L.PARSE_PALETTE, dtype=torch.float32, device=parse.device) / 127.5 - 1
    return palette[parse.long()].permute(0, 3, 1, 2)


def skeleton_overlay(person: torch.Tensor, keypoints: torch.Tensor) -> torch.Tensor:
    """The photos `(B, 3, H, W)` with keypoints `(B, 18, 3)` drawn on them."""
    drawn = [
        draw_keypoints(image, points)
        for image, points in zip(to_uint8(person), keypoints.detach().cpu().numpy(), strict=True)
    ]
    return torch.from_numpy(np.stack(drawn)).permute(0, 3, 1, 2).float() / 127.5 - 1


def image_grid(columns: list[torch.Tensor]) -> np.ndarray:
    """Columns of `(B, C, H, W)` images in [-1, 1] -> one `(rows*H, cols*W, 3)` uint8 sheet."""
    rows = min(columns[0].shape[0], MAX_ROWS)
    tiles = [to_uint8(column[:rows]) for column in columns]
    return np.vstack([np.hstack([tile[r] for tile in tiles]) for r in range(rows)])
