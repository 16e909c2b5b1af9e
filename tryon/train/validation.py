"""Held-out validation during training: score the networks, log it, keep the best weights.

A GAN keeps changing after its losses have flattened, and not always for the better (longer
TOM runs have scored worse than shorter ones), so the last step of a run is not
necessarily the one to ship. With `tryon train ... --val-data DIR`, before the first step
(the `--init` weights are candidates too) and every `--val-every` steps, the component's
trainer scores the first `--val-size` pairs of a held-out dataset
(higher is better: parse mIoU, warp IoU or region SSIM, as `tryon eval` measures them on
the dataset's own parse), the loop appends the score to `validation.csv`, and the best
step so far is saved as `best/<component>` with `best/score.json` saying which step it
was. `tryon pack` takes `RUN/best/<component>` like any component folder.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import torch
from torch.utils.data import Dataset

from tryon.errors import InvalidInputError
from tryon.train.loop import Batch, ComponentTrainer, collate_tensors, to_device


class Validator:
    """Scores a trainer on a fixed held-out set and keeps the best weights in `out/best/`.

    Args:
        dataset: the held-out pairs; the first `size` are scored, in order, every time.
        batch: pairs per forward pass.
        size: how many pairs to score (all of them when the dataset is smaller).
        out: the run folder.
    """

    def __init__(self, dataset: Dataset, batch: int, size: int, out: Path) -> None:
        if size < 1:
            raise InvalidInputError(f"--val-size {size}: score at least one pair")
        count = min(size, len(dataset))
        self.batches: list[Batch] = [
            collate_tensors([dataset[i] for i in range(start, min(start + batch, count))])
            for start in range(0, count, batch)
        ]
        self.log_path = out / "validation.csv"
        self.best_dir = out / "best"
        score_file = self.best_dir / "score.json"
        # {"step", "metric", "score"} of the best step so far, kept over `--resume`.
        self.best: dict | None = json.loads(score_file.read_text()) if score_file.exists() else None

    def __call__(
        self, trainer: ComponentTrainer, step: int, seconds: float, device: torch.device
    ) -> float:
        """Score the trainer's networks now; log the score and save them if they are the
        best so far. Returns the score."""
        for net in trainer.networks.values():
            net.eval()
        with torch.no_grad():
            score = trainer.validate([to_device(b, device) for b in self.batches])
        self._log(step, seconds, trainer.validation_metric, score)
        if self.best is None or score > self.best["score"]:
            self.best = {"step": step, "metric": trainer.validation_metric, "score": score}
            trainer.save(self.best_dir)
            tmp = self.best_dir / "score.json.tmp"
            tmp.write_text(json.dumps(self.best, indent=2) + "\n")
            os.replace(tmp, self.best_dir / "score.json")
        return score

    def _log(self, step: int, seconds: float, metric: str, score: float) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.log_path.exists()
        with self.log_path.open("a", newline="") as handle:
            writer = csv.writer(handle)
            if new:
                writer.writerow(["step", "seconds", metric])
            writer.writerow([step, f"{seconds:.1f}", f"{score:.5f}"])
