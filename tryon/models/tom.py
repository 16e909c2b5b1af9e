"""The try-on module (CP-VTON's TOM): a U-Net that renders the person and a composition mask.

The final image keeps the warped garment's texture where the composition mask is high and
uses the rendered person elsewhere: final = warped garment x mask + rendered x (1 - mask).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from tryon.models.checkpoint import PretrainedMixin, grown_copy
from tryon.models.unet import UNet


class TomOutput(NamedTuple):
    """What `TryOnGenerator` returns.

    Attributes:
        rendered: `(B, 3, H, W)` in [-1, 1], the person as the U-Net draws them.
        composition_mask: `(B, 1, H, W)` in [0, 1], where to use the warped garment.
        composite: `(B, 3, H, W)` in [-1, 1], the try-on result (`compose`).
    """

    rendered: torch.Tensor
    composition_mask: torch.Tensor
    composite: torch.Tensor


def compose(
    warped_garment: torch.Tensor, rendered: torch.Tensor, composition_mask: torch.Tensor
) -> torch.Tensor:
    """final = warped garment x mask + rendered x (1 - mask); images in [-1, 1], mask in [0, 1]."""
    return warped_garment * composition_mask + rendered * (1.0 - composition_mask)


class TryOnGenerator(PretrainedMixin, nn.Module):
    """Renders the person wearing the warped garment.

    Args:
        person_channels: channels of the TOM person representation (22: clothing-agnostic
            RGB, 18 keypoint heatmaps, body shape).
        base_channels: U-Net width at full resolution.
        depth: number of stride-2 levels; inputs must be divisible by 2**depth.
        max_channels: cap on the U-Net's widths.
        residual_blocks: residual blocks at the U-Net's coarsest level (`add_residual_blocks`
            grows them onto a trained generator).
    """

    def __init__(
        self,
        person_channels: int = 22,
        base_channels: int = 16,
        depth: int = 4,
        max_channels: int = 128,
        residual_blocks: int = 0,
    ) -> None:
        super().__init__()
        if residual_blocks < 0:
            raise ValueError(f"residual_blocks must be 0 or more, got {residual_blocks}")
        self.unet = UNet(
            person_channels + 4, 4, base_channels, depth, max_channels, residual_blocks
        )

    def forward(
        self, person: torch.Tensor, warped_garment: torch.Tensor, warped_mask: torch.Tensor
    ) -> TomOutput:
        """Render and compose.

        Args:
            person: `(B, person_channels, H, W)`, the TOM person representation.
            warped_garment: `(B, 3, H, W)` in [-1, 1], from the GMM.
            warped_mask: `(B, 1, H, W)` in [0, 1], from the GMM.
        """
        out = self.unet(torch.cat((person, warped_garment, warped_mask), 1))
        rendered = torch.tanh(out[:, :3])
        composition_mask = torch.sigmoid(out[:, 3:])
        return TomOutput(
            rendered, composition_mask, compose(warped_garment, rendered, composition_mask)
        )


def add_residual_blocks(tom: TryOnGenerator, blocks: int) -> TryOnGenerator:
    """A copy of a trained generator with `blocks` residual blocks in all at its coarsest
    level; the blocks it lacks start as identities, so the copy renders exactly as `tom`
    does until they learn. In training mode, on `tom`'s device and dtype. Refuses to remove
    trained blocks, and a generator whose batch norms are folded (grow it before folding).
    """
    have = len(tom.unet.bottleneck)
    if blocks < have:
        raise ValueError(f"this TOM has {have} trained residual blocks; cannot drop to {blocks}")
    added = tuple(f"unet.bottleneck.{block}." for block in range(have, blocks))
    return grown_copy(tom, added, residual_blocks=blocks)
