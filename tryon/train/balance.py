"""Label weights that keep rare parse labels from being ignored.

Real parse maps are dominated by background, upper clothes and trousers; dresses, coats,
skirts, legs and shoes cover under 1% of the pixels each, so plain cross-entropy learns
them last, yet each counts as much as background in the mean IoU. ENet's weighting
(Paszke et al., 2016), w = 1 / ln(c + frequency), lifts them without letting a label seen
a handful of times dominate (c = 1.02 caps any weight at about 50).
"""

from __future__ import annotations

import numpy as np
import torch

from tryon.data.viton import VitonDataset, read_parse

ENET_C = 1.02


def label_frequencies(dataset: VitonDataset, num_labels: int, samples: int = 5000) -> torch.Tensor:
    """Pixel share of each label over up to `samples` parse maps spread across the
    dataset: `(num_labels,)` summing to 1."""
    step = max(len(dataset) // samples, 1)
    counts = np.zeros(num_labels, dtype=np.int64)
    for index in range(0, len(dataset), step):
        labels = read_parse(dataset.items[index].parse, neck_label=dataset.layout.neck_label)
        counts += np.bincount(labels.ravel().clip(0, num_labels - 1), minlength=num_labels)
    return torch.from_numpy(counts / counts.sum()).float()


def balanced_label_weights(frequencies: torch.Tensor) -> torch.Tensor:
    """ENet weights for `(L,)` label frequencies, scaled so that the average pixel's
    weight is 1 (the loss keeps its size); labels never seen get weight 0."""
    weights = 1.0 / torch.log(ENET_C + frequencies)
    weights = torch.where(frequencies > 0, weights, torch.zeros_like(weights))
    return weights / (weights * frequencies).sum()
