"""Batches of dataset items: stacking them, moving them to a device, drawing them forever.

A batch is a dict of tensors keyed by the dataset's field names (`person` `(B, 3, H, W)`,
`parse` `(B, H, W)`, `keypoints` `(B, 18, 3)`, ...); training, validation and evaluation
all build theirs here.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset

Batch = dict[str, torch.Tensor]


def collate_tensors(items: list[dict]) -> Batch:
    """Stack the tensor fields of dataset items into a batch (names and the like dropped)."""
    return {
        key: torch.stack([item[key] for item in items])
        for key in items[0]
        if isinstance(items[0][key], torch.Tensor)
    }


def to_device(batch: Batch, device: torch.device) -> Batch:
    """The batch's tensors on `device` (copied without blocking where it can)."""
    return {key: value.to(device, non_blocking=True) for key, value in batch.items()}


def endless_batches(
    dataset: Dataset, batch: int, workers: int, seed: int, step: int
) -> Iterator[Batch]:
    """Shuffled batches of `batch` items forever, from batch number `step` on; epoch e is
    shuffled by (seed, e), so a resumed run sees the same order it would have seen."""
    per_epoch = max(len(dataset) // batch, 1)
    epoch = step // per_epoch
    skip = step % per_epoch
    while True:
        generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
        loader = DataLoader(
            dataset,
            batch_size=batch,
            shuffle=True,
            drop_last=True,
            num_workers=workers,
            generator=generator,
            persistent_workers=False,
            collate_fn=collate_tensors,
        )
        for index, item in enumerate(loader):
            if index < skip:
                continue
            yield item
        skip = 0
        epoch += 1
