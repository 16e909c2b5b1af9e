"""Blending images by masks: the one formula the pipeline, training and evaluation share."""

from __future__ import annotations

import torch


def paste_into_region(
    inside: torch.Tensor, outside: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """`inside` where `mask` is 1, `outside` where it is 0, blended in between.

    inside, outside: `(B, C, H, W)`; mask: `(B, 1, H, W)` in [0, 1].
    """
    return inside * mask + outside * (1 - mask)
