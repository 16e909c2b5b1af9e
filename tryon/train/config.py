"""Training recipes: one typed config per network, read from YAML, saved in each run.

A recipe (`configs/<weights>/<network>.yaml`) says what network to train (`network:`, the
constructor arguments of `HumanParser`, `GeometricMatcher` or `TryOnGenerator`), where it
starts (`init:`), its loss weights (`losses:`), the data, the schedule (`training:`) and
held-out validation (`validation:`). Keys left out keep their defaults; `network:` keys
left out keep what `init:` has, or the constructor's defaults (the shipped
architecture) without it. `tryon train` writes the resolved recipe into the run folder
(`RUN/config.yaml`), and `--resume` reads it back.

A recipe file that cannot be read, or that names an unknown key or a value of the wrong
type, is refused with an `InvalidInputError` naming the file, the key and the valid keys.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tryon.data.augment import Augmentation
from tryon.errors import InvalidInputError, WeightsError
from tryon.labels import NUM_KEYPOINTS, NUM_PARSE_LABELS
from tryon.models import GeometricMatcher, HumanParser, TryOnGenerator
from tryon.models.gmm import GRID_WEIGHT
from tryon.models.precision import PRECISIONS
from tryon.representation import GMM_PERSON_CHANNELS, TOM_PERSON_CHANNELS

CONFIG_NAME = "config.yaml"  # the resolved recipe in a run folder
NETWORK_CLASSES: dict[str, type] = {
    "parser": HumanParser,
    "gmm": GeometricMatcher,
    "tom": TryOnGenerator,
}
# Constructor arguments the data fixes, not the recipe: the person representation's
# channels and the label sets.
FIXED_ARGUMENTS: dict[str, dict[str, int]] = {
    "parser": {"num_labels": NUM_PARSE_LABELS, "num_keypoints": NUM_KEYPOINTS},
    "gmm": {"person_channels": GMM_PERSON_CHANNELS},
    "tom": {"person_channels": TOM_PERSON_CHANNELS},
}


@dataclass(kw_only=True)
class DataSettings:
    """The training pairs (`data:`): a VITON-layout folder, its pairs file, the model
    resolution (height, width), and `augment:` (`flip`, `colour`, `scale`: random changes
    to the training samples, off by default; `tryon.data.augment`)."""

    path: Path | None = None
    pairs: str = "pairs.txt"
    size: tuple[int, int] = (256, 192)
    augment: Augmentation = field(default_factory=Augmentation)


@dataclass(kw_only=True)
class Schedule:
    """How a run trains (`training:`): AdamW at `lr` with warm-up and cosine decay over
    `steps` or `max_minutes` of training, whichever ends first (resumed runs included)."""

    steps: int = 5000
    max_minutes: float | None = None
    batch: int = 8
    lr: float = 2e-3
    seed: int = 0
    workers: int = 1
    device: str = "cpu"
    precision: str = "float32"
    log_every: int = 25
    checkpoint_every: int = 250
    sample_every: int = 500


@dataclass(kw_only=True)
class ValidationSettings:
    """Held-out pairs scored during training (`validation:`); the best step is kept in
    RUN/best/. Off while `path` is null."""

    path: Path | None = None
    pairs: str = "pairs.txt"
    every: int = 500
    size: int = 64


@dataclass(kw_only=True)
class ParserLosses:
    """The parser's loss: cross-entropy plus `dice_weight` x per-label Dice on the parse,
    `keypoint_weight` x the keypoint heatmaps' loss."""

    dice_weight: float = 0.0
    keypoint_weight: float = 1.0


@dataclass(kw_only=True)
class GmmLosses:
    """The GMM's loss: L1 and Dice to the worn garment plus `grid_weight` x CP-VTON+'s grid
    regulariser."""

    grid_weight: float = GRID_WEIGHT


@dataclass(kw_only=True)
class TomLosses:
    """The TOM's loss: L1 + `ssim_weight` x (1 - SSIM) in the try-on region, the
    composition mask's L1, `adversarial_weight` x hinge GAN and `feature_weight` x
    discriminator feature matching (no discriminator when both are 0). `tune_gmm`: also
    fine-tune the GMM, through the final image plus this weight x its own warp loss
    (null: the GMM stays frozen). The discriminator learns at `discriminator_lr_ratio` x the
    generator's rate (two time-scale updates), with spectral norm on its convolutions when
    `spectral_norm` (both steady a discriminator that starts untrained beside a trained
    TOM)."""

    adversarial_weight: float = 0.1
    feature_weight: float = 1.0
    ssim_weight: float = 1.0
    tune_gmm: float | None = None
    discriminator_lr_ratio: float = 1.0
    spectral_norm: bool = False


@dataclass(kw_only=True)
class TrainingConfig:
    """What every network's recipe has."""

    network: dict[str, Any] = field(default_factory=dict)
    init: Path | None = None
    data: DataSettings = field(default_factory=DataSettings)
    training: Schedule = field(default_factory=Schedule)
    validation: ValidationSettings = field(default_factory=ValidationSettings)

    component: typing.ClassVar[str]


@dataclass(kw_only=True)
class ParserConfig(TrainingConfig):
    """`tryon train parser`: the human parser."""

    component: typing.ClassVar[str] = "parser"
    losses: ParserLosses = field(default_factory=ParserLosses)
    training: Schedule = field(default_factory=lambda: Schedule(lr=2e-3))


@dataclass(kw_only=True)
class GmmConfig(TrainingConfig):
    """`tryon train gmm`: the geometric matcher; with `parsed_by` (a parser folder) on the
    representation that parser makes of each photo, as in production."""

    component: typing.ClassVar[str] = "gmm"
    losses: GmmLosses = field(default_factory=GmmLosses)
    training: Schedule = field(default_factory=lambda: Schedule(lr=1e-4))
    parsed_by: Path | None = None


@dataclass(kw_only=True)
class TomConfig(TrainingConfig):
    """`tryon train tom`: the try-on generator on the warps of the trained GMM in `gmm`."""

    component: typing.ClassVar[str] = "tom"
    losses: TomLosses = field(default_factory=TomLosses)
    training: Schedule = field(default_factory=lambda: Schedule(lr=4e-4))
    gmm: Path | None = None
    parsed_by: Path | None = None


CONFIG_CLASSES: dict[str, type[TrainingConfig]] = {
    "parser": ParserConfig,
    "gmm": GmmConfig,
    "tom": TomConfig,
}
COMPONENT_KEY = "trains"  # a recipe's top-level key naming its network
KEY_ORDER = ("init", "network", "gmm", "parsed_by", "losses", "data", "training", "validation")


def load_config(component: str, path: Path | None) -> TrainingConfig:
    """The recipe for `component` in the YAML file `path` (defaults where it is silent);
    all defaults without a file. Refuses an unreadable file, a recipe for another
    network, unknown keys and values of the wrong type or range, naming the key."""
    config = CONFIG_CLASSES[component]()
    if path is None:
        return config
    values = _read_yaml(path)
    trains = values.pop(COMPONENT_KEY, component)
    if trains != component:
        raise InvalidInputError(
            f"{path} is a recipe for the {trains}: train it with `tryon train {trains}`"
        )
    config = _from_mapping(config, values, "", path)
    check_config(config, path)
    return config


def network_folder(value: Path, network: str) -> Path:
    """The component folder an `init:`, `gmm:` or `parsed_by:` value names: a folder
    written by `tryon train` or `save_pretrained` (RUN/tom), or the name of a set of
    bundled weights ("synthetic", "viton"), meaning that set's `network`."""
    if value.is_dir() or len(value.parts) > 1:
        return value
    from tryon.pipeline import weights_folder

    try:
        return weights_folder(str(value)) / network
    except WeightsError as error:
        raise InvalidInputError(
            f"{value}: neither a network folder nor bundled weights ({error}); give a "
            "component folder such as RUN/tom, or a bundled weights name such as synthetic"
        ) from None


def network_arguments(config: TrainingConfig) -> dict[str, Any]:
    """The recipe's `network:` keys with the arguments the data fixes: what the network's
    constructor takes."""
    return {**config.network, **FIXED_ARGUMENTS[config.component]}


def network_defaults(component: str) -> dict[str, Any]:
    """The `network:` keys a recipe may set for `component`, with the constructor's
    defaults: its arguments but those the data fixes."""
    parameters = inspect.signature(NETWORK_CLASSES[component]).parameters
    return {
        name: parameter.default
        for name, parameter in parameters.items()
        if name not in FIXED_ARGUMENTS[component]
    }


def check_config(config: TrainingConfig, source: Path | str) -> None:
    """Refuse values out of range, naming the key and `source` (the recipe file)."""
    schedule, validation = config.training, config.validation
    positive = {
        "training.steps": schedule.steps,
        "training.batch": schedule.batch,
        "training.lr": schedule.lr,
        "training.log_every": schedule.log_every,
        "training.checkpoint_every": schedule.checkpoint_every,
        "training.sample_every": schedule.sample_every,
        "training.max_minutes": schedule.max_minutes,
        "validation.every": validation.every,
        "validation.size": validation.size,
        "data.size": min(config.data.size),
        "losses.keypoint_weight": getattr(config.losses, "keypoint_weight", 1.0),
    }
    for key, value in positive.items():
        if value is not None and value <= 0:
            raise InvalidInputError(f"{key} {value} in {source}: give a positive number")
    for key, value in dataclasses.asdict(config.losses).items():
        if value is not None and value < 0:
            raise InvalidInputError(f"losses.{key} {value} in {source}: give 0 or more")
    if schedule.precision not in PRECISIONS:
        raise InvalidInputError(
            f"training.precision {schedule.precision!r} in {source}: choose one of "
            f"{', '.join(PRECISIONS)}"
        )
    augment_problems = config.data.augment.problems()
    if augment_problems:
        key, problem = augment_problems[0]
        raise InvalidInputError(f"data.augment.{key} {problem} in {source}")
    if schedule.workers < 0:
        raise InvalidInputError(f"training.workers {schedule.workers} in {source}: give 0 or more")
    _check_network(config.component, config.network, source)


def config_to_dict(config: TrainingConfig) -> dict[str, Any]:
    """The recipe as plain YAML values (paths as strings, tuples as lists), its network
    named under `trains`, in the order the shipped recipes use."""
    values = _plain(dataclasses.asdict(config))
    return {
        COMPONENT_KEY: config.component,
        **{key: values[key] for key in KEY_ORDER if key in values},
    }


class _RecipeDumper(yaml.SafeDumper):
    """Writes sections as blocks and lists of numbers on one line, as the recipes read."""


_RecipeDumper.add_representer(
    list,
    lambda dumper, items: dumper.represent_sequence(
        "tag:yaml.org,2002:seq", items, flow_style=True
    ),
)


def save_config(config: TrainingConfig, path: Path, note: str) -> None:
    """Write the resolved recipe to `path` (a run's `config.yaml`), `note` as a comment
    on top."""
    text = yaml.dump(config_to_dict(config), Dumper=_RecipeDumper, sort_keys=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# {note}\n{text}")


def with_overrides(config: TrainingConfig, overrides: Mapping[str, Any]) -> TrainingConfig:
    """`config` with the command line's values: `overrides` maps a recipe key, dotted for
    a section's ("training.steps"), to its value; None leaves the recipe's."""
    for key, value in overrides.items():
        if value is None:
            continue
        section, _, name = key.rpartition(".")
        if section:
            part = dataclasses.replace(getattr(config, section), **{name: value})
            config = dataclasses.replace(config, **{section: part})
        else:
            config = dataclasses.replace(config, **{name: value})
    return config


def frozen_differences(saved: TrainingConfig, given: TrainingConfig) -> list[tuple[str, Any, Any]]:
    """(key, saved value, given value) for each setting a resumed run must keep and
    `given` changes: the network (the keys `given` sets), the losses, and where the
    person representation and the warps come from (`parsed_by`, `gmm`)."""
    before, after = config_to_dict(saved), config_to_dict(given)
    differences = [
        (f"network.{key}", before["network"].get(key), value)
        for key, value in after["network"].items()
        if before["network"].get(key) != value
    ]
    differences += [
        (f"losses.{key}", before["losses"][key], value)
        for key, value in after["losses"].items()
        if before["losses"][key] != value
    ]
    for key in ("gmm", "parsed_by"):
        if before.get(key) != after.get(key):
            differences.append((key, before.get(key), after.get(key)))
    return differences


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        values = yaml.safe_load(path.read_text())
    except OSError as error:
        raise InvalidInputError(f"cannot read the recipe {path}: {error.strerror}") from error
    except yaml.YAMLError as error:
        raise InvalidInputError(f"{path} is not valid YAML: {error}") from error
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise InvalidInputError(f"{path} must hold a mapping of recipe keys")
    return values


def _from_mapping(base: Any, values: Any, where: str, source: Path) -> Any:
    """`base` (a config dataclass) with the keys of the YAML mapping `values` replaced,
    nested sections recursively; `where` is the section's key prefix ("training.")."""
    section = where.rstrip(".") or "the recipe"
    if not isinstance(values, Mapping):
        raise InvalidInputError(f"{section} in {source} must be a mapping of keys")
    names = [f.name for f in dataclasses.fields(base)]
    unknown = sorted(set(values) - set(names))
    if unknown:
        valid = names if where else [COMPONENT_KEY, *(key for key in KEY_ORDER if key in names)]
        raise InvalidInputError(
            f"unknown key {where}{unknown[0]} in {source}; valid keys in {section}: "
            f"{', '.join(valid)}"
        )
    hints = typing.get_type_hints(type(base))
    changes = {}
    for key, value in values.items():
        current = getattr(base, key)
        if dataclasses.is_dataclass(current):
            changes[key] = _from_mapping(current, value, f"{where}{key}.", source)
        else:
            changes[key] = _convert(value, hints[key], f"{where}{key}", source)
    return dataclasses.replace(base, **changes)


def _convert(value: Any, hint: Any, key: str, source: Path) -> Any:
    """`value` from YAML as the type `hint` says (int, float, str, bool, Path, a pair of
    ints, a mapping, or one of these or None)."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None:
        if type(None) in options:
            return None
        raise InvalidInputError(f"{key} in {source} needs a value")
    expected = next(option for option in options if option is not type(None))
    converted = _as_type(value, expected)
    if converted is None:
        raise InvalidInputError(f"{key} in {source} must be {_describe(expected)}, got {value!r}")
    return converted


def _as_type(value: Any, expected: Any) -> Any:
    """`value` as `expected`, or None when it is not one."""
    if expected is bool:
        return value if isinstance(value, bool) else None
    if isinstance(value, bool):
        return None
    if expected is int:
        return value if isinstance(value, int) else None
    if expected is float:
        return float(value) if isinstance(value, int | float) else None
    if expected in (str, Path):
        return expected(value) if isinstance(value, str) else None
    if typing.get_origin(expected) is tuple:
        kinds = typing.get_args(expected)
        if not isinstance(value, list) or len(value) != len(kinds):
            return None
        items = [_as_type(v, kind) for v, kind in zip(value, kinds, strict=True)]
        return None if any(item is None for item in items) else tuple(items)
    if typing.get_origin(expected) is dict:
        return dict(value) if isinstance(value, Mapping) else None
    raise TypeError(f"no YAML conversion for {expected}")


def _describe(expected: Any) -> str:
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if expected is Path:
        return "a path"
    if typing.get_origin(expected) is tuple:
        if typing.get_args(expected)[0] is float:
            return "a pair of numbers like [0.9, 1.1]"
        return "a pair of integers like [256, 192]"
    if typing.get_origin(expected) is dict:
        return "a mapping of keys"
    return names[expected]


def _check_network(component: str, network: Mapping[str, Any], source: Path | str) -> None:
    """Refuse `network:` keys the network's constructor does not take (or the data
    fixes), and values of another type than the constructor's default."""
    defaults = network_defaults(component)
    for key, value in network.items():
        if key not in defaults:
            raise InvalidInputError(
                f"unknown key network.{key} in {source}; valid keys in network: "
                f"{', '.join(defaults)}"
            )
        default = defaults[key]
        expected = list if isinstance(default, tuple | list) else type(default)
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            continue
        if not isinstance(value, expected) or isinstance(value, bool) != isinstance(default, bool):
            raise InvalidInputError(
                f"network.{key} in {source} must be like its default {_plain(default)!r}, "
                f"got {value!r}"
            )


def _plain(value: Any) -> Any:
    """Dataclass dicts as YAML values: paths as strings, tuples as lists."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    return value
