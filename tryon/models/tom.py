"""The try-on module (CP-VTON's TOM): a U-Net that renders the person and a composition mask.

The final image keeps the warped garment's texture where the composition mask is high and
uses the rendered person elsewhere: final = warped garment x mask + rendered x (1 - mask).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from tryon.models.checkpoint import PretrainedMixin, grown_copy


def conv_bn_act(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    """3x3 convolution, batch norm, LeakyReLU(0.2)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.LeakyReLU(0.2, inplace=True),
    )


class DownBlock(nn.Module):
    """Halve the resolution: a stride-2 convolution then a 3x3 convolution."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            conv_bn_act(in_channels, out_channels, stride=2),
            conv_bn_act(out_channels, out_channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class UpBlock(nn.Module):
    """Double the resolution and merge the skip connection by addition.

    The coarse features are projected to the skip's width (1x1, at the coarse resolution
    where it is cheap), upsampled bilinearly, added to the skip and convolved. Adding
    rather than concatenating halves the cost of the full-resolution convolution.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.project = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels)
        )
        self.fuse = conv_bn_act(out_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(
            self.project(x), size=skip.shape[-2:], mode="bilinear", align_corners=False
        )
        return self.fuse(x + skip)


class ResidualBlock(nn.Module):
    """x + (3x3 conv, batch norm, LeakyReLU, 3x3 conv, batch norm)(x), same width.

    The last batch norm's scale starts at zero, so a new block passes its input through
    unchanged: blocks added to a trained network leave its output as it was until they
    learn.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            conv_bn_act(channels, channels),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )
        nn.init.zeros_(self.layers[-1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layers(x)


class UNet(nn.Module):
    """A U-Net: `(B, in_channels, H, W)` -> `(B, out_channels, H, W)`.

    H and W must be divisible by 2**depth. Widths double at each level from
    `base_channels`, capped at `max_channels`. `residual_blocks` residual blocks work at
    the coarsest level (1/2**depth of the input's size), where they are cheap and see the
    most of the image.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        base_channels: int,
        depth: int,
        max_channels: int,
        residual_blocks: int = 0,
    ) -> None:
        super().__init__()
        widths = [min(base_channels * 2**level, max_channels) for level in range(depth + 1)]
        self.stem = conv_bn_act(in_channels, widths[0])
        pairs = list(zip(widths[:-1], widths[1:], strict=True))
        self.down = nn.ModuleList(DownBlock(fine, coarse) for fine, coarse in pairs)
        coarsest = widths[-1]
        self.bottleneck = nn.Sequential(*(ResidualBlock(coarsest) for _ in range(residual_blocks)))
        self.up = nn.ModuleList(UpBlock(coarse, fine) for fine, coarse in reversed(pairs))
        self.head = nn.Conv2d(widths[0], out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.stem(x)]
        for block in self.down:
            skips.append(block(skips[-1]))
        x = self.bottleneck(skips.pop())
        for block in self.up:
            x = block(x, skips.pop())
        return self.head(x)


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
