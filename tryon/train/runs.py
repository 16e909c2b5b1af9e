"""Setting up a training run from a recipe: the resolved config, the data, the trainer.

`resolve_recipe` settles what a run trains with (a recipe file, or a resumed run's own
`config.yaml`, then the command line's overrides); `prepare_run` checks it against the
run folder, builds the dataset, the held-out scorer and the network's trainer, and
writes the resolved recipe into the run folder. `tryon.train.loop.run_training` then
trains.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tryon.data.viton import VitonDataset, read_pairs, resolve_pairs_path
from tryon.errors import InvalidInputError
from tryon.models import GeometricMatcher, resolve_precision
from tryon.train.architecture import network_to_train
from tryon.train.components import GmmTrainer, ParserTrainer, PersonAnalyst, TomTrainer
from tryon.train.config import (
    CONFIG_NAME,
    GmmConfig,
    ParserConfig,
    TomConfig,
    TrainingConfig,
    check_config,
    frozen_differences,
    load_config,
    network_folder,
    save_config,
    with_overrides,
)
from tryon.train.loop import CHECKPOINT_NAME, resolve_device
from tryon.train.trainer import ComponentTrainer
from tryon.train.validation import Validator


@dataclass
class PreparedRun:
    """Everything `run_training` needs, built from a resolved recipe."""

    config: TrainingConfig
    trainer: ComponentTrainer
    dataset: VitonDataset
    validator: Validator | None
    device: torch.device
    resuming: bool


def resolve_recipe(
    component: str,
    recipe: Path | None,
    out: Path,
    resume: bool,
    overrides: Mapping[str, Any],
) -> TrainingConfig:
    """The recipe a run in `out` trains `component` with: the file `recipe` (the defaults
    without one) or, resuming without one, the run's own `config.yaml`; then the command
    line's `overrides` (recipe keys -> values, None for "as the recipe says").

    A resumed run keeps its network, losses, `gmm` and `parsed_by`: a `recipe` that
    changes one is refused, naming the key. The training and held-out data a `recipe`
    leaves out stay the run's."""
    saved_path = out / CONFIG_NAME
    saved = load_config(component, saved_path) if resume and saved_path.exists() else None
    if resume and (out / CHECKPOINT_NAME).exists() and saved is None and recipe is None:
        raise InvalidInputError(
            f"{out} has no {CONFIG_NAME} to resume from: pass --config with the recipe the "
            "run started with"
        )
    config = saved if recipe is None and saved is not None else load_config(component, recipe)
    if saved is not None and recipe is not None:
        differences = frozen_differences(saved, config)
        if differences:
            key, before, after = differences[0]
            raise InvalidInputError(
                f"the run in {out} trains with {key} {before!r}, {recipe} says {after!r}: a "
                f"resumed run keeps its networks and losses; resume it without --config, or "
                f"start a new run with --init {out / component}"
            )
        if config.data.path is None:
            config.data.path = saved.data.path
        if config.validation.path is None:
            config.validation.path = saved.validation.path
    config = with_overrides(config, overrides)
    check_config(config, "the command line")
    return config


def prepare_run(config: TrainingConfig, out: Path, resume: bool) -> PreparedRun:
    """Check the recipe against the run folder, build what the run trains, and write the
    resolved recipe to `out/config.yaml`. Refuses (before writing anything) a run folder
    that holds a run without `resume`, missing data, and held-out pairs that are
    training pairs."""
    checkpoint = out / CHECKPOINT_NAME
    if checkpoint.exists() and not resume:
        raise InvalidInputError(
            f"{out} already holds a training run; pass --resume to continue it or choose "
            "another --out"
        )
    if config.data.path is None:
        raise InvalidInputError("no training data: pass --data DIR or set data.path")
    if isinstance(config, TomConfig) and config.gmm is None:
        raise InvalidInputError(
            "training tom needs the trained GMM: pass --gmm RUN/gmm (the folder `tryon train "
            "gmm` wrote) or set gmm: in the recipe"
        )
    device = resolve_device(config.training.device)
    data = config.data
    dataset = VitonDataset(data.path, pairs=data.pairs, size=data.size, augment=data.augment)
    validator = None if config.validation.path is None else _validator(config, out)
    resuming = resume and checkpoint.exists()
    trainer = _trainer(config, device, resuming)
    note = f"the resolved recipe of this run: tryon train {config.component} --out {out}"
    save_config(config, out / CONFIG_NAME, note)
    return PreparedRun(config, trainer, dataset, validator, device, resuming)


def _validator(config: TrainingConfig, out: Path) -> Validator:
    """The held-out scorer; refuses pairs that are also training pairs (same photo and
    garment in the same dataset folder)."""
    settings, data = config.validation, config.data
    assert settings.path is not None and data.path is not None
    pairs_file = resolve_pairs_path(settings.path, settings.pairs).resolve()
    if settings.path.resolve() == data.path.resolve():
        training = set(read_pairs(resolve_pairs_path(data.path, data.pairs)))
        shared = training & set(read_pairs(pairs_file))
        if shared:
            raise InvalidInputError(
                f"{len(shared)} of the validation pairs are training pairs too (e.g. "
                f"{' '.join(sorted(shared)[0])}); validate on pairs held out from training: "
                "another folder, or the two files of a `tryon split`"
            )
    held_out = VitonDataset(settings.path, pairs=settings.pairs, size=data.size)
    return Validator(
        held_out, config.training.batch, settings.size, out, str(pairs_file), settings.every
    )


def _trainer(config: TrainingConfig, device: torch.device, resuming: bool) -> ComponentTrainer:
    """The network's trainer with the recipe's network (`network_to_train`), learning
    rate, precision and losses; the GMM and TOM on the representation of `parsed_by`'s
    parser when the recipe names one."""
    precision = resolve_precision(config.training.precision, device)
    network = network_to_train(config, resuming)
    lr = config.training.lr
    if isinstance(config, ParserConfig):
        losses = config.losses
        return ParserTrainer(
            lr,
            device,
            network,
            precision,
            dice_weight=losses.dice_weight,
            keypoint_weight=losses.keypoint_weight,
        )
    assert isinstance(config, GmmConfig | TomConfig)
    analyst = (
        PersonAnalyst(device)
        if config.parsed_by is None
        else PersonAnalyst.from_folder(
            network_folder(config.parsed_by, "parser"), device, precision
        )
    )
    if isinstance(config, GmmConfig):
        grid_weight = config.losses.grid_weight
        return GmmTrainer(lr, device, network, grid_weight, precision, analyst)
    assert config.gmm is not None
    return TomTrainer(
        lr,
        device,
        GeometricMatcher.from_pretrained(network_folder(config.gmm, "gmm")),
        network,
        adversarial_weight=config.losses.adversarial_weight,
        feature_weight=config.losses.feature_weight,
        ssim_weight=config.losses.ssim_weight,
        precision=precision,
        tune_gmm=config.losses.tune_gmm,
        analyst=analyst,
        discriminator_lr_ratio=config.losses.discriminator_lr_ratio,
        spectral_norm=config.losses.spectral_norm,
    )
