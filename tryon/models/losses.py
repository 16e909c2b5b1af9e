"""Loss terms more than one network trains with."""

from __future__ import annotations

import torch


def soft_dice_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - Dice overlap of `N` pairs of soft masks in [0, 1], averaged over the pairs.

    Args:
        prediction, target: `(N, ...)`, e.g. `(B, 1, H, W)` masks, one pair per image; each
            pair's overlap is summed over all dimensions but the first.
    """
    dims = tuple(range(1, prediction.dim()))
    inter = (prediction * target).sum(dim=dims)
    total = prediction.sum(dim=dims) + target.sum(dim=dims)
    return (1 - 2 * inter / total.clamp_min(1e-6)).mean()
