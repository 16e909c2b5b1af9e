"""The trainers the training tests run: the real architectures at a fraction of the width."""

from __future__ import annotations

import torch

from tryon.models import GeometricMatcher, TryOnGenerator
from tryon.representation import GMM_PERSON_CHANNELS, TOM_PERSON_CHANNELS
from tryon.train.components import GmmTrainer, TomTrainer


def tiny_gmm() -> GeometricMatcher:
    """A seeded small GMM (widths 8-16, correlation 8x6, no refinement or flow stage)."""
    torch.manual_seed(0)
    return GeometricMatcher(
        person_channels=GMM_PERSON_CHANNELS,
        feature_channels=(8, 8, 16, 16),
        regressor_width=16,
        correlation_size=(8, 6),
        refinement_stages=0,
        flow_stage=False,
    )


def tiny_gmm_trainer(lr: float, **settings) -> GmmTrainer:
    """`tiny_gmm` in a CPU `GmmTrainer` (settings: loss weights, precision)."""
    return GmmTrainer(lr=lr, device=torch.device("cpu"), gmm=tiny_gmm(), **settings)


def tiny_tom_trainer(lr: float, *, background: bool = False, **loss_weights: float) -> TomTrainer:
    """A small TOM (widths 8-16, with a background head if asked) learning from
    `tiny_gmm`'s warps, in a CPU `TomTrainer`."""
    gmm = tiny_gmm()
    tom = TryOnGenerator(
        person_channels=TOM_PERSON_CHANNELS,
        base_channels=8,
        max_channels=16,
        residual_blocks=0,
        background=background,
    )
    return TomTrainer(lr=lr, device=torch.device("cpu"), gmm=gmm, tom=tom, **loss_weights)
