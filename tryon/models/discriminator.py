"""A conditional multi-scale PatchGAN discriminator and the GAN losses that use it.

The discriminator sees the generator's input (the condition) concatenated with an image,
at the input resolution and at successively halved ones (pix2pixHD), and returns patch
logits plus the intermediate activations for the feature-matching loss.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from tryon.models.checkpoint import PretrainedMixin

GanMode = Literal["hinge", "lsgan"]
GAN_MODES: tuple[str, ...] = ("hinge", "lsgan")

# One entry per scale: (patch logits (B, 1, h, w), intermediate activations).
DiscriminatorOutput = list[tuple[torch.Tensor, list[torch.Tensor]]]


class PatchDiscriminator(nn.Module):
    """A PatchGAN: 4x4 convolutions, `num_layers` of them stride 2, then two stride 1.

    Input `(B, in_channels, H, W)`; returns logits `(B, 1, ~H/2**num_layers, ~W/2**num_layers)`
    and the activations after each hidden layer.
    """

    def __init__(
        self,
        in_channels: int,
        base_channels: int,
        num_layers: int,
        max_channels: int,
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        widths = [min(base_channels * 2**i, max_channels) for i in range(num_layers + 1)]
        layers = [self._block(in_channels, widths[0], stride=2, norm=False)]
        layers += [
            self._block(a, b, stride=2, norm=True)
            for a, b in zip(widths[:-2], widths[1:-1], strict=True)
        ]
        layers.append(self._block(widths[-2], widths[-1], stride=1, norm=True))
        self.hidden = nn.ModuleList(layers)
        self.logits = nn.Conv2d(widths[-1], 1, 4, padding=1)
        if spectral_norm:
            for module in list(self.modules()):
                if isinstance(module, nn.Conv2d):
                    nn.utils.parametrizations.spectral_norm(module)

    @staticmethod
    def _block(in_channels: int, out_channels: int, stride: int, norm: bool) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 4, stride=stride, padding=1),
            nn.InstanceNorm2d(out_channels, affine=True) if norm else nn.Identity(),
            nn.LeakyReLU(0.2, inplace=True),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        features = []
        for layer in self.hidden:
            x = layer(x)
            features.append(x)
        return self.logits(x), features


class MultiScaleDiscriminator(PretrainedMixin, nn.Module):
    """Conditional PatchGAN at `num_scales` scales (each half the previous resolution).

    Args:
        condition_channels: channels of the condition, the generator's input (TOM: person
            representation 22 + warped garment 3 + warped mask 1 = 26).
        image_channels: channels of the judged image (3, RGB in [-1, 1]).
        base_channels: width of each PatchGAN's first layer.
        num_layers: stride-2 layers of each PatchGAN (3 gives 70x70 patches).
        max_channels: cap on the widths.
        num_scales: how many PatchGANs, one per scale.
        spectral_norm: constrain every convolution's spectral norm to 1 (Miyato et al.).
    """

    def __init__(
        self,
        condition_channels: int = 26,
        image_channels: int = 3,
        base_channels: int = 64,
        num_layers: int = 3,
        max_channels: int = 256,
        num_scales: int = 2,
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        self.scales = nn.ModuleList(
            PatchDiscriminator(
                condition_channels + image_channels,
                base_channels,
                num_layers,
                max_channels,
                spectral_norm,
            )
            for _ in range(num_scales)
        )

    def forward(self, condition: torch.Tensor, image: torch.Tensor) -> DiscriminatorOutput:
        """Judge `image` given `condition`.

        Args:
            condition: `(B, condition_channels, H, W)`.
            image: `(B, image_channels, H, W)` in [-1, 1], real or generated.

        Returns:
            Per scale, finest first: patch logits `(B, 1, h, w)` (high = real) and the
            list of intermediate activations.
        """
        x = torch.cat((condition, image), 1)
        outputs = []
        for index, scale in enumerate(self.scales):
            if index:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outputs.append(scale(x))
        return outputs


def _check_mode(mode: str) -> None:
    if mode not in GAN_MODES:
        raise ValueError(f"unknown GAN loss {mode!r}, supported: {list(GAN_MODES)}")


def discriminator_loss(
    real: DiscriminatorOutput, fake: DiscriminatorOutput, mode: GanMode = "hinge"
) -> torch.Tensor:
    """The discriminator's loss, averaged over scales.

    `fake` should come from detached generated images.
    """
    _check_mode(mode)
    total = real[0][0].new_zeros(())
    for (real_logits, _), (fake_logits, _) in zip(real, fake, strict=True):
        if mode == "hinge":
            total = total + F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()
        else:
            total = total + (real_logits - 1.0).square().mean() + fake_logits.square().mean()
    return total / len(real)


def generator_adversarial_loss(fake: DiscriminatorOutput, mode: GanMode = "hinge") -> torch.Tensor:
    """The generator's adversarial loss on the discriminator's view of its images (scale mean)."""
    _check_mode(mode)
    total = fake[0][0].new_zeros(())
    for logits, _ in fake:
        total = total + (-logits.mean() if mode == "hinge" else (logits - 1.0).square().mean())
    return total / len(fake)


def feature_matching_loss(real: DiscriminatorOutput, fake: DiscriminatorOutput) -> torch.Tensor:
    """L1 between the discriminator's activations on real and generated images (pix2pixHD).

    Real activations are detached; the loss is averaged over scales and layers.
    """
    total = real[0][0].new_zeros(())
    count = 0
    for (_, real_features), (_, fake_features) in zip(real, fake, strict=True):
        for real_feature, fake_feature in zip(real_features, fake_features, strict=True):
            total = total + F.l1_loss(fake_feature, real_feature.detach())
            count += 1
    return total / count
