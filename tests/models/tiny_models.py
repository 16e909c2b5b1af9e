"""Tiny seeded networks and a few-step fitting helper for the model tests."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from tryon.models import GeometricMatcher, HumanParser, MultiScaleDiscriminator, TryOnGenerator

# The plainest form of each network (no refiner, refinement or flow stage, residual blocks
# or background head: the tests of those parts add them), at a fraction of the width.
TINY_FACTORIES: dict[str, Callable[[], nn.Module]] = {
    "parser": lambda: HumanParser(
        encoder_name="tu-regnetx_002",
        decoder_channels=(16, 16, 8, 8, 8),
        input_scale=0.5,
        refiner_channels=0,
    ),
    "gmm": lambda: GeometricMatcher(
        feature_channels=(8, 8, 16, 16),
        regressor_width=16,
        grid_size=(4, 3),
        refinement_stages=0,
        flow_stage=False,
    ),
    "gmm_with_flow": lambda: GeometricMatcher(
        feature_channels=(8, 8, 16, 16),
        regressor_width=16,
        grid_size=(4, 3),
        refinement_stages=0,
        flow_stage=True,
    ),
    "tom": lambda: TryOnGenerator(
        base_channels=8, depth=4, max_channels=32, residual_blocks=0, background=False
    ),
    "discriminator": lambda: MultiScaleDiscriminator(
        base_channels=8, num_layers=2, max_channels=32
    ),
}


def image(batch: int, channels: int, height: int, width: int, low: float = -1.0) -> torch.Tensor:
    """Random tensor with values uniform in [low, 1]."""
    return low + (1.0 - low) * torch.rand(batch, channels, height, width)


def fit(
    model: nn.Module, loss_fn: Callable[[], torch.Tensor], steps: int = 8, lr: float = 3e-3
) -> tuple[float, float]:
    """Take `steps` Adam steps on `loss_fn`; return the first and the last loss."""
    model.train()
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        optimiser.zero_grad()
        loss = loss_fn()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    return losses[0], losses[-1]
