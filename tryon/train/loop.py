"""The training loop every network shares: schedule, checkpoints, resume, logs, samples.

A network's trainer (`tryon.train.components`: `ParserTrainer`, `GmmTrainer`,
`TomTrainer`) builds its networks and optimisers, takes one optimisation step on a batch
and draws a sample grid; this module does the rest. A run folder holds:

- `config.yaml`: the resolved recipe (`tryon.train.config`), written by `tryon train`;
- `checkpoint.pt`: networks, optimisers, step and training seconds, rewritten atomically
  every `checkpoint_every` steps (a killed run loses at most that many steps; `--resume`
  goes on);
- `losses.csv`: step, seconds, and each loss, every `log_every` steps;
- `samples/step_XXXXXX.png`: what the networks make of a fixed batch;
- `<component>/`: the trained network (`save_pretrained`), written at every checkpoint;
- with a held-out set (`tryon.train.validation`): `validation.csv` and `best/<component>/`.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset

from tryon.data.batches import endless_batches, to_device
from tryon.errors import InvalidInputError
from tryon.models.precision import precision_name, resolve_precision
from tryon.train.config import Schedule
from tryon.train.logs import CsvLog
from tryon.train.trainer import ComponentTrainer
from tryon.train.validation import Validator

CHECKPOINT_NAME = "checkpoint.pt"


def resolve_device(name: str) -> torch.device:
    """`cpu`, `cuda`, `cuda:N` or `auto` (a GPU when there is one)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InvalidInputError(f"--device {name}: no CUDA GPU is visible; use --device cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise InvalidInputError(
            f"--device {name!r} is not a device; use cpu, cuda or auto"
        ) from None


def save_checkpoint(
    path: Path, trainer: ComponentTrainer, step: int, seconds: float, precision: str
) -> None:
    """Write networks, optimisers, the step, the training seconds so far and the precision
    trained in ("float32" or "bfloat16"); atomic, so a kill never leaves half a file."""
    state = {
        "step": step,
        "seconds": seconds,
        "networks": {name: net.state_dict() for name, net in trainer.networks.items()},
        "optimizers": {name: opt.state_dict() for name, opt in trainer.optimizers.items()},
        "loss_settings": trainer.loss_settings,
        "precision": precision,
    }
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(
    path: Path, trainer: ComponentTrainer, device: torch.device
) -> tuple[int, float]:
    """Restore a run; returns the step it had reached and the seconds it had trained.

    Refuses (before changing anything) a trainer whose networks or loss settings differ
    from the run's: resuming must continue the same training, not a different one.
    """
    state = torch.load(path, map_location=device, weights_only=True)
    for setting, value in state.get("loss_settings", {}).items():
        given = trainer.loss_settings.get(setting)
        if given != value:
            raise InvalidInputError(
                f"the run in {path.parent} trained with {setting} {value}, not {given}: "
                "resume it with its own recipe (leave --config out)"
            )
    for name, net in trainer.networks.items():
        if name not in state["networks"]:
            raise InvalidInputError(
                f"the run in {path.parent} did not train a {name}: resume it with its own "
                "recipe (leave --config out)"
            )
        try:
            net.load_state_dict(state["networks"][name])
        except RuntimeError as error:
            first_line = str(error).splitlines()[0]
            raise InvalidInputError(
                f"the run's {name} in {path} is not the network built now ({first_line}); "
                "resume it with its own recipe (leave --config out)"
            ) from error
    for name, opt in trainer.optimizers.items():
        opt.load_state_dict(state["optimizers"][name])
    return int(state["step"]), float(state.get("seconds", 0.0))


def cosine_lr(base: float, step: int, total: int, warmup: int = 100, spent: float = 0.0) -> float:
    """Linear warm-up over `warmup` steps, then cosine decay to 5% of `base`.

    The decay follows whichever budget is further along: the steps (`step` of `total`) or
    `spent`, the fraction of a time budget used (0 without one).
    """
    if step < warmup:
        return base * (step + 1) / warmup
    progress = min(max((step - warmup) / max(total - warmup, 1), spent), 1.0)
    return base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


def run_training(
    trainer: ComponentTrainer,
    dataset: Dataset,
    schedule: Schedule,
    out: Path,
    device: torch.device,
    *,
    resume: bool = False,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
    validator: Validator | None = None,
) -> Path:
    """Train until `schedule.steps` or, with `schedule.max_minutes`, until that much
    training time (resumed runs included) is spent, whichever comes first; the learning
    rate decays towards the nearer end. Resumes from `out` when asked; returns the folder
    of the trained component. With a `validator`, the networks are scored before the first
    step, every `validator.every` steps and at the end, and the best are kept in
    `out/best/`."""
    checkpoint = out / CHECKPOINT_NAME
    if checkpoint.exists() and not resume:
        raise InvalidInputError(
            f"{out} already holds a training run; pass --resume to continue it or choose "
            "another --out"
        )
    if len(dataset) < schedule.batch:
        raise InvalidInputError(
            f"the training data has {len(dataset)} pairs, fewer than training.batch "
            f"{schedule.batch}"
        )
    (out / "samples").mkdir(parents=True, exist_ok=True)
    torch.manual_seed(schedule.seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input sizes: pick the fastest kernels
        torch.backends.cuda.matmul.allow_tf32 = True
    start_step, earlier_seconds = (
        load_checkpoint(checkpoint, trainer, device) if checkpoint.exists() else (0, 0.0)
    )
    fixed = next(endless_batches(dataset, schedule.batch, 0, schedule.seed + 1, 0))
    run = _Run(trainer, schedule, out, device, to_device(fixed, device), validator)
    batches = endless_batches(dataset, schedule.batch, schedule.workers, schedule.seed, start_step)
    run.started = time.perf_counter() - earlier_seconds
    if validator is not None:
        validator.start(start_step)
        if start_step == 0:
            validator(trainer, 0, 0.0, device)  # the starting point (init) is a candidate too
    for step in range(start_step, schedule.steps):
        run.set_learning_rates(step)
        for net in trainer.networks.values():
            net.train()
        losses = trainer.train_step(to_device(next(batches), device), step)
        done = step + 1
        last = done == schedule.steps or run.budget_spent() >= 1
        if on_step is not None:
            on_step(done, losses)
        run.after_step(done, losses, last)
        if last:
            break
    return out / trainer.name


class _Run:
    """What `run_training` does around each step: the learning rates, then the log,
    samples, validation and checkpoint. Training time runs from `started` (a
    `time.perf_counter()` value, earlier runs' seconds subtracted); validation counts."""

    def __init__(
        self,
        trainer: ComponentTrainer,
        schedule: Schedule,
        out: Path,
        device: torch.device,
        fixed: dict[str, torch.Tensor],
        validator: Validator | None,
    ) -> None:
        self.trainer, self.schedule, self.out, self.device = trainer, schedule, out, device
        self.fixed = fixed
        self.validator = validator
        self.log = CsvLog(out / "losses.csv")
        self.precision = precision_name(resolve_precision(schedule.precision, device))
        self.budget = None if schedule.max_minutes is None else 60.0 * schedule.max_minutes
        self.started = time.perf_counter()

    def seconds(self) -> float:
        """Seconds of training so far, resumed runs included."""
        return time.perf_counter() - self.started

    def budget_spent(self) -> float:
        """The share of the time budget spent so far (0 without one)."""
        return 0.0 if self.budget is None else self.seconds() / self.budget

    def set_learning_rates(self, step: int) -> None:
        """Each optimiser group's rate for `step` (`cosine_lr` of its first rate)."""
        spent = self.budget_spent()
        for optimizer in self.trainer.optimizers.values():
            for group in optimizer.param_groups:
                group["lr"] = cosine_lr(
                    group.setdefault("base_lr", group["lr"]),
                    step,
                    self.schedule.steps,
                    spent=spent,
                )

    def after_step(self, done: int, losses: dict[str, float], last: bool) -> None:
        """Log, sample, validate and checkpoint as the schedule asks after step `done`
        (all of them after the `last` step)."""
        schedule, trainer = self.schedule, self.trainer
        if done % schedule.log_every == 0 or last:
            self.log.write(done, self.seconds(), losses)
        if done % schedule.sample_every == 0 or last:
            with torch.no_grad():
                for net in trainer.networks.values():
                    net.eval()
                grid = trainer.sample_grid(self.fixed)
            Image.fromarray(grid).save(self.out / "samples" / f"step_{done:06d}.png")
        if self.validator is not None and (done % self.validator.every == 0 or last):
            self.validator(trainer, done, self.seconds(), self.device)
        if done % schedule.checkpoint_every == 0 or last:
            path = self.out / CHECKPOINT_NAME
            save_checkpoint(path, trainer, done, self.seconds(), self.precision)
            trainer.save(self.out)
