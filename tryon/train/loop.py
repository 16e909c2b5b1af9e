"""The training loop every component shares: progress, checkpoints, resume, logs, samples.

A component's trainer (`tryon/train/parser.py`, `gmm.py`, `tom.py`) says how to build its
networks, take one optimisation step on a batch and draw a sample grid; this module does
the rest. A run folder holds:

- `checkpoint.pt`: networks, optimisers, step and training seconds, rewritten atomically
  every `checkpoint_every` steps (a killed run loses at most that many steps; `--resume`
  goes on);
- `losses.csv`: step, seconds, and each loss, every `log_every` steps;
- `samples/step_XXXXXX.png`: what the networks make of a fixed batch;
- `<component>/`: the trained network (`save_pretrained`), written at every checkpoint;
- with a held-out set (`tryon.train.validation`): `validation.csv` and `best/<component>/`.
"""

from __future__ import annotations

import csv
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from tryon.errors import InvalidInputError
from tryon.models.precision import precision_name, resolve_precision

if TYPE_CHECKING:
    from tryon.train.validation import Validator

Batch = dict[str, torch.Tensor]


@dataclass
class TrainConfig:
    """What a training run is told (the `tryon train` flags)."""

    data: Path
    out: Path
    steps: int = 5000
    batch: int = 8
    lr: float = 2e-3
    device: str = "cpu"
    resume: bool = False
    size: tuple[int, int] = (256, 192)
    seed: int = 0
    workers: int = 1
    log_every: int = 25
    checkpoint_every: int = 250
    sample_every: int = 500
    max_minutes: float | None = None
    val_every: int = 500
    precision: str = "float32"


class ComponentTrainer(Protocol):
    """What a component provides to the loop."""

    name: str
    networks: dict[str, torch.nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    validation_metric: str
    # Loss settings a resumed run must keep (`--grid-weight`, `--balance-labels`, ...),
    # keyed by option name with underscores: {"grid_weight": 0.1, "balance_labels": False}.
    loss_settings: dict[str, float | bool | str | None]

    def train_step(self, batch: Batch, step: int) -> dict[str, float]: ...

    def validate(self, batches: Iterable[Batch]) -> dict[str, float]:
        """Scores on held-out batches: `validation_metric` (higher is better; the best step
        is chosen by it) and any others worth logging beside it."""
        ...

    def sample_grid(self, batch: Batch) -> np.ndarray: ...

    def save(self, out: Path) -> None: ...


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


def endless(dataset: Dataset, batch: int, workers: int, seed: int, step: int) -> Iterator[Batch]:
    """Shuffled batches forever; epoch e is shuffled by (seed, e), so a resumed run sees
    the same order it would have seen."""
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


def collate_tensors(items: list[dict]) -> Batch:
    """Stack the tensor fields of dataset items into a batch (names and the like dropped)."""
    return {
        key: torch.stack([item[key] for item in items])
        for key in items[0]
        if isinstance(items[0][key], torch.Tensor)
    }


def to_device(batch: Batch, device: torch.device) -> Batch:
    return {key: value.to(device, non_blocking=True) for key, value in batch.items()}


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


def _as_option(setting: str, value: float | bool | str | None) -> str:
    """How `tryon train` spells a loss setting: `--grid-weight 0.1`, `--no-balance-labels`,
    `--parsed-by runs/parser/parser`."""
    name = setting.replace("_", "-")
    if value is None:
        return f"no --{name}"
    if isinstance(value, bool):
        return f"--{name}" if value else f"--no-{name}"
    return f"--{name} {value}" if isinstance(value, str) else f"--{name} {value:g}"


def checkpoint_precision(checkpoint: Path) -> str | None:
    """The precision a run's checkpoint file says it trained in ("float32" or "bfloat16");
    None for checkpoints written before they recorded it (before session 11)."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)
    return state.get("precision")


def load_checkpoint(
    path: Path, trainer: ComponentTrainer, device: torch.device
) -> tuple[int, float]:
    """Restore a run; returns the step it had reached and the seconds it had trained.

    Refuses (before changing anything) a trainer whose networks or loss weights differ
    from the run's: resuming must continue the same training, not a different one.
    """
    state = torch.load(path, map_location=device, weights_only=True)
    for setting, value in state.get("loss_settings", {}).items():
        if trainer.loss_settings.get(setting) != value:
            raise InvalidInputError(
                f"this run trained with {_as_option(setting, value)}, not "
                f"{_as_option(setting, trainer.loss_settings.get(setting))}: resume it with "
                f"{_as_option(setting, value)}"
            )
    for name, net in trainer.networks.items():
        if name not in state["networks"]:
            raise InvalidInputError(
                f"the run in {path.parent} did not train a {name}: resume with the options the "
                "run started with"
            )
        try:
            net.load_state_dict(state["networks"][name])
        except RuntimeError as error:
            first_line = str(error).splitlines()[0]
            raise InvalidInputError(
                f"the run's {name} in {path} is not the network built now ({first_line}); "
                "resume with the options the run started with"
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
    config: TrainConfig,
    device: torch.device,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
    validator: Validator | None = None,
) -> Path:
    """Train until `config.steps` or, with `config.max_minutes`, until that much training
    time (resumed runs included) is spent, whichever comes first; the learning rate decays
    towards the nearer end. Resumes from `config.out` when asked; returns the folder of the
    trained component. With a `validator`, the networks are scored before the first step,
    every `config.val_every` steps and at the end, and the best are kept in `out/best/`."""
    out = config.out
    checkpoint = out / "checkpoint.pt"
    if checkpoint.exists() and not config.resume:
        raise InvalidInputError(
            f"{out} already holds a training run; pass --resume to continue it or choose "
            "another --out"
        )
    if len(dataset) < config.batch:
        raise InvalidInputError(
            f"{config.data} has {len(dataset)} pairs, fewer than --batch {config.batch}"
        )
    (out / "samples").mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input sizes: pick the fastest kernels
        torch.backends.cuda.matmul.allow_tf32 = True
    start_step, earlier_seconds = (
        load_checkpoint(checkpoint, trainer, device) if checkpoint.exists() else (0, 0.0)
    )
    budget = None if config.max_minutes is None else 60.0 * config.max_minutes
    trained_in = precision_name(resolve_precision(config.precision, device))
    fixed = to_device(next(endless(dataset, config.batch, 0, config.seed + 1, 0)), device)
    log = CsvLog(out / "losses.csv")
    batches = endless(dataset, config.batch, config.workers, config.seed, start_step)
    started = time.perf_counter() - earlier_seconds
    if validator is not None:
        validator.start(start_step)
        if start_step == 0:
            validator(trainer, 0, 0.0, device)  # the starting point (--init) is a candidate too
    for step in range(start_step, config.steps):
        seconds = time.perf_counter() - started
        spent = 0.0 if budget is None else seconds / budget
        for optimizer in trainer.optimizers.values():
            for group in optimizer.param_groups:
                group["lr"] = cosine_lr(
                    group.setdefault("base_lr", group["lr"]), step, config.steps, spent=spent
                )
        for net in trainer.networks.values():
            net.train()
        losses = trainer.train_step(to_device(next(batches), device), step)
        done = step + 1
        seconds = time.perf_counter() - started
        last = done == config.steps or (budget is not None and seconds >= budget)
        if on_step is not None:
            on_step(done, losses)
        if done % config.log_every == 0 or last:
            log.write(done, seconds, losses)
        if done % config.sample_every == 0 or last:
            with torch.no_grad():
                for net in trainer.networks.values():
                    net.eval()
                grid = trainer.sample_grid(fixed)
            Image.fromarray(grid).save(out / "samples" / f"step_{done:06d}.png")
        if validator is not None and (done % config.val_every == 0 or last):
            validator(trainer, done, seconds, device)
            seconds = time.perf_counter() - started
        if done % config.checkpoint_every == 0 or last:
            save_checkpoint(checkpoint, trainer, done, seconds, trained_in)
            trainer.save(out)
        if last:
            break
    return out / trainer.name


class CsvLog:
    """Appends rows of named values to a CSV (`losses.csv`, `validation.csv`): step,
    seconds, then the values, writing the header once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.columns: list[str] | None = None
        if path.exists():
            with path.open() as handle:
                header = handle.readline().strip()
            self.columns = header.split(",")[2:] if header else None

    def write(self, step: int, seconds: float, losses: dict[str, float]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = self.columns is None
        if new:
            self.columns = sorted(losses)
        with self.path.open("a", newline="") as handle:
            writer = csv.writer(handle)
            if new:
                writer.writerow(["step", "seconds", *self.columns])
            writer.writerow(
                [
                    step,
                    f"{seconds:.1f}",
                    *(f"{losses.get(c, float('nan')):.5f}" for c in self.columns),
                ]
            )


def read_losses(path: Path) -> dict[str, list[float]]:
    """The columns of a `losses.csv` as lists (for plots and tests)."""
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    return {key: [float(row[key]) for row in rows] for key in rows[0]} if rows else {}
