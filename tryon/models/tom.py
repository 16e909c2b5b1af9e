"""The try-on module (CP-VTON's TOM): a U-Net that renders the person and a composition mask.

The final image keeps the warped garment's texture where the composition mask is high and
uses the rendered person elsewhere: final = warped garment x mask + rendered x (1 - mask).
With a background head (the shipped TOMs have one; `add_background_head` grows one onto a
trained generator) a third source joins the blend: the photo's own background continued
under the try-on region, shown where the new garment and the arms leave the background
visible, instead of a painted halo.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from tryon.models.checkpoint import PretrainedMixin, grown_copy
from tryon.models.unet import UNet

# The background head's bias starts here: it shows 0.005% of the background fill, so a grown
# TOM renders as before to a part in ten thousand. It learns from its own supervised loss
# (binary cross-entropy on its logits), whose gradient does not vanish at a saturated start.
# (The head learns faster than the rest of the TOM: tryon.train.components.HEAD_LR_FACTOR.)
BACKGROUND_HEAD_START = -10.0


class TomOutput(NamedTuple):
    """What `TryOnGenerator` returns.

    Attributes:
        rendered: `(B, 3, H, W)` in [-1, 1], the person as the U-Net draws them.
        composition_mask: `(B, 1, H, W)` in [0, 1], where to use the warped garment.
        composite: `(B, 3, H, W)` in [-1, 1], the try-on result (`compose`).
        background_mask: `(B, 1, H, W)` in [0, 1], where the composite shows the background
            fill; None for a generator without a background head.
    """

    rendered: torch.Tensor
    composition_mask: torch.Tensor
    composite: torch.Tensor
    background_mask: torch.Tensor | None = None


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
        background: a head that predicts where the photo's background shows through
            (`add_background_head` grows it onto a trained generator); `forward` then needs
            the background fill.
    """

    def __init__(
        self,
        person_channels: int = 22,
        base_channels: int = 16,
        depth: int = 4,
        max_channels: int = 128,
        residual_blocks: int = 4,
        background: bool = True,
    ) -> None:
        super().__init__()
        if residual_blocks < 0:
            raise ValueError(f"residual_blocks must be 0 or more, got {residual_blocks}")
        self.unet = UNet(
            person_channels + 4, 4, base_channels, depth, max_channels, residual_blocks
        )
        self.background_head = None
        if background:
            self.background_head = nn.Conv2d(self.unet.head.in_channels, 1, 3, padding=1)
            nn.init.zeros_(self.background_head.weight)
            nn.init.constant_(self.background_head.bias, BACKGROUND_HEAD_START)

    @property
    def shows_background(self) -> bool:
        """Whether `forward` blends in the background fill (and so needs it)."""
        return self.background_head is not None

    def forward(
        self,
        person: torch.Tensor,
        warped_garment: torch.Tensor,
        warped_mask: torch.Tensor,
        background: torch.Tensor | None = None,
    ) -> TomOutput:
        """Render and compose.

        Args:
            person: `(B, person_channels, H, W)`, the TOM person representation.
            warped_garment: `(B, 3, H, W)` in [-1, 1], from the GMM.
            warped_mask: `(B, 1, H, W)` in [0, 1], from the GMM.
            background: `(B, 3, H, W)` in [-1, 1], the photo's background continued under
                the try-on region (`PersonRepresentation.background_fill`); needed when
                `shows_background`, ignored otherwise.
        """
        features = self.unet.features(person, warped_garment, warped_mask)
        # In the usual layout, where its channel slices are dense: tanh on a slice of the
        # channels-last output is many times slower (1.5 ms on two CPU threads).
        out = self.unet.head(features).contiguous()
        rendered = torch.tanh(out[:, :3])
        composition_mask = torch.sigmoid(out[:, 3:])
        composite = compose(warped_garment, rendered, composition_mask)
        background_mask = None
        if self.background_head is not None:
            if background is None:
                raise ValueError(
                    "this TOM shows the photo's background: pass the background fill "
                    "(PersonRepresentation.background_fill())"
                )
            background_mask = torch.sigmoid(self.background_head(features))
            composite = composite * (1.0 - background_mask) + background * background_mask
        return TomOutput(rendered, composition_mask, composite, background_mask)


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


def add_background_head(tom: TryOnGenerator) -> TryOnGenerator:
    """A copy of a trained generator with a background head that starts almost closed
    (`BACKGROUND_HEAD_START`), so the copy renders as `tom` does to a part in ten thousand
    until the head learns. In training mode, on `tom`'s device and dtype. Refuses a
    generator whose batch norms are folded.
    """
    if tom.background_head is not None:
        raise ValueError("this TOM already has a background head")
    return grown_copy(tom, ("background_head.",), background=True)
