"""Held-out validation during training: score the networks, log it, keep the best weights.

A GAN keeps changing after its losses have flattened, and not always for the better (longer
TOM runs have scored worse than shorter ones), so the last step of a run is not
necessarily the one to ship. With held-out pairs (a recipe's `validation.path`, or
`tryon train ... --val-data DIR`), before the first step (the `init:` weights are
candidates too) and every `validation.every` steps, the component's trainer scores the
first `validation.size` pairs of a held-out dataset, higher is better:
`parse_miou` (parser), `warp_iou` (GMM, as `tryon eval` scores it) or
`region_ssim_gt_parse` (TOM: SSIM inside the scored try-on region at model resolution, on
the dataset's own parse and keypoints; `tryon eval`'s `region_ssim` runs the production
path instead: our parser, photo resolution). The loop appends the score to
`validation.csv`, and the best step so far is saved as `best/<component>` with
`best/score.json` saying which step it was. `tryon pack` takes `RUN/best/<component>`
like any component folder. Validation time counts as training time for `--max-minutes`.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
from pathlib import Path

import torch
from torch.utils.data import Dataset

from tryon.data.batches import Batch, collate_tensors, to_device
from tryon.errors import InvalidInputError
from tryon.train.logs import CsvLog
from tryon.train.trainer import ComponentTrainer


class Validator:
    """Scores a trainer on a fixed held-out set and keeps the best weights in `out/best/`.

    Args:
        dataset: the held-out pairs; the first `size` are scored, in order, every time.
        batch: pairs per forward pass.
        size: how many pairs to score (all of them when the dataset is smaller).
        out: the run folder.
        source: where the held-out pairs come from (e.g. the pairs file); recorded with
            the best score, so that a resumed run is only compared on the same pairs.
        every: training steps between scores.
    """

    def __init__(
        self,
        dataset: Dataset,
        batch: int,
        size: int,
        out: Path,
        source: str = "held-out set",
        every: int = 500,
    ) -> None:
        if size < 1:
            raise InvalidInputError(f"validation.size {size}: score at least one pair")
        count = min(size, len(dataset))
        if count == 0:
            raise InvalidInputError(
                "the validation data holds no pairs to score; point it at held-out data"
            )
        self.every = every
        self.batches: list[Batch] = [
            collate_tensors([dataset[i] for i in range(start, min(start + batch, count))])
            for start in range(0, count, batch)
        ]
        self.held_out = f"{count} pairs of {source}"
        self.log_path = out / "validation.csv"
        self.best_dir = out / "best"
        # {"step", "metric", "score", "held_out"} of the best step so far (`start`).
        self.best: dict | None = None

    def start(self, step: int) -> None:
        """Pick up where the run is: a fresh run (`step` 0) drops what a run killed before
        its first checkpoint left; a resumed one keeps its best and drops the log rows of
        the steps after its checkpoint, which it trains again."""
        score_file = self.best_dir / "score.json"
        if step == 0:
            self.log_path.unlink(missing_ok=True)
            shutil.rmtree(self.best_dir, ignore_errors=True)
            return
        self.best = json.loads(score_file.read_text()) if score_file.exists() else None
        if self.best is not None and self.best.get("held_out", self.held_out) != self.held_out:
            raise InvalidInputError(
                f"this run chose its best step on {self.best['held_out']}; resume it with the "
                f"same validation path, pairs and size (not {self.held_out}), or start a new "
                "run with --init RUN/best/<component>"
            )
        if self.log_path.exists():
            with self.log_path.open() as handle:
                rows = list(csv.reader(handle))
            kept = [rows[0], *(row for row in rows[1:] if int(row[0]) <= step)]
            with self.log_path.open("w", newline="") as handle:
                csv.writer(handle).writerows(kept)

    def __call__(
        self, trainer: ComponentTrainer, step: int, seconds: float, device: torch.device
    ) -> float:
        """Score the trainer's networks now; log the score and save them if they are the
        best so far. Returns the score (NaN when no held-out pair had anything to score,
        e.g. no garment; such a step is never the best)."""
        modes = {name: net.training for name, net in trainer.networks.items()}
        for net in trainer.networks.values():
            net.eval()
        try:
            with torch.no_grad():
                scores = trainer.validate(to_device(batch, device) for batch in self.batches)
        finally:
            for name, net in trainer.networks.items():
                net.train(modes[name])
        CsvLog(self.log_path).write(step, seconds, scores)
        score = scores[trainer.validation_metric]
        if not math.isnan(score) and (self.best is None or score > self.best["score"]):
            record = {"step": step, "metric": trainer.validation_metric, "score": score}
            self._save_best(trainer, {**record, "held_out": self.held_out})
        return score

    def _save_best(self, trainer: ComponentTrainer, record: dict) -> None:
        """Write the networks and their score beside the old best, then swap folders, so
        a kill leaves one whole best folder."""
        staging = self.best_dir.with_name("best.tmp")
        shutil.rmtree(staging, ignore_errors=True)
        trainer.save(staging)
        (staging / "score.json").write_text(json.dumps(record, indent=2) + "\n")
        retired = self.best_dir.with_name("best.old")
        shutil.rmtree(retired, ignore_errors=True)
        if self.best_dir.exists():
            os.replace(self.best_dir, retired)
        os.replace(staging, self.best_dir)
        shutil.rmtree(retired, ignore_errors=True)
        self.best = record
