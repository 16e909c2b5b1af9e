"""U-Net building blocks shared by the try-on generator and the GMM's flow stage."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tryon.models.precision import convolution_input


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
    """A U-Net: `(B, in_channels, H, W)` -> `(B, out_channels, H, W)`, its input passed as
    parts `(B, C_i, H, W)` that it concatenates along channels (C_i summing to in_channels).

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

    def forward(self, *parts: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(*parts))

    def features(self, *parts: torch.Tensor) -> torch.Tensor:
        """The last decoder level's features, `(B, base_channels, H, W)`, which `head`
        turns into the output; other heads may read them too."""
        skips = [self.stem(convolution_input(self.stem[0], *parts))]
        for block in self.down:
            skips.append(block(skips[-1]))
        x = self.bottleneck(skips.pop())
        for block in self.up:
            x = block(x, skips.pop())
        return x
