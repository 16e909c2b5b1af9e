"""The GMM trainer the training tests run: the real architecture at a fraction of the width."""

from __future__ import annotations

import torch

from tryon.models import GeometricMatcher
from tryon.representation import GMM_PERSON_CHANNELS
from tryon.train.components import GmmTrainer


def tiny_gmm_trainer(lr: float, **loss_weights: float) -> GmmTrainer:
    """A seeded small GMM (widths 8-16, correlation 8x6) in a CPU `GmmTrainer`."""
    torch.manual_seed(0)
    gmm = GeometricMatcher(
        person_channels=GMM_PERSON_CHANNELS,
        feature_channels=(8, 8, 16, 16),
        regressor_width=16,
        correlation_size=(8, 6),
    )
    return GmmTrainer(lr=lr, device=torch.device("cpu"), gmm=gmm, **loss_weights)
