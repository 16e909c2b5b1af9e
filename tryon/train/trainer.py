"""What a network's trainer provides to the training loop and to validation."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from tryon.data.batches import Batch


class ComponentTrainer(Protocol):
    """One network's training (`tryon.train.components`): its networks and optimisers,
    one optimisation step, held-out scores, a sample grid and saving."""

    name: str
    networks: dict[str, torch.nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    validation_metric: str
    # Loss settings a resumed run must keep, by their config key:
    # {"grid_weight": 0.1, "parsed_by": None}.
    loss_settings: dict[str, float | bool | str | None]

    def train_step(self, batch: Batch, step: int) -> dict[str, float]: ...

    def validate(self, batches: Iterable[Batch]) -> dict[str, float]:
        """Scores on held-out batches: `validation_metric` (higher is better; the best step
        is chosen by it) and any others worth logging beside it."""
        ...

    def sample_grid(self, batch: Batch) -> np.ndarray: ...

    def save(self, out: Path) -> None: ...
