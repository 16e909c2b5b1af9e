"""Saving and loading a pipeline folder: the three networks plus `pipeline.json`.

A pipeline folder holds one component folder each for `parser/`, `gmm/` and `tom/`
(`tryon.models.checkpoint`) and `pipeline.json`, which says what the weights are: their
name, licence, resolution, vocabularies, and a `TrainingRecord` of how they were trained.
This module sits above the networks' modules and imports them; they never import it.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from tryon import __version__
from tryon.errors import WeightsError
from tryon.models.checkpoint import read_json
from tryon.models.gmm import GeometricMatcher
from tryon.models.parser import HumanParser
from tryon.models.tom import TryOnGenerator

PIPELINE_CONFIG_NAME = "pipeline.json"
NETWORKS = ("parser", "gmm", "tom")


@dataclasses.dataclass(frozen=True)
class DatasetRecord:
    """The data the weights learned from; their licence follows from its source.

    Attributes:
        name: short name of the dataset, e.g. "synthetic", "VITON".
        description: what the samples are (kind of photos, resolution, how they were made).
        source: where the data came from and under which terms.
    """

    name: str | None = None
    description: str | None = None
    source: str | None = None


@dataclasses.dataclass(frozen=True)
class NetworkTraining:
    """How one network of the bundle was trained; None where it is not known.

    Attributes:
        steps: optimisation steps since `init`, all its runs together (earlier runs may
            have used other batch sizes).
        batch: samples per step in its last run, as its recipe says.
        hours: training hours of those steps (validation included).
        hardware: what they ran on, e.g. "2-core CPU", "NVIDIA H200".
        precision: what its convolutions trained in during its last run ("float32",
            "bfloat16").
        init: the weights its training started from (a bundled name, as it was then, or a
            folder); None when trained from scratch.
        recipe: its recipe, `configs/<weights>/<network>.yaml` (its last stage).
        losses: the loss weights of its last run, as its resolved recipe gave them (for
            the TOM, whether it trained as a GAN: `adversarial_weight`, `feature_weight`).
    """

    steps: int | None = None
    batch: int | None = None
    hours: float | None = None
    hardware: str | None = None
    precision: str | None = None
    init: str | None = None
    recipe: str | None = None
    losses: dict[str, Any] | None = None


@dataclasses.dataclass(frozen=True)
class TrainingRecord:
    """How the weights of a pipeline folder were trained: `pipeline.json`'s `training_data`.

    Attributes:
        dataset: the training data and its source.
        samples: training pairs the networks learned from (all networks together).
        networks: "parser", "gmm" and "tom" (those known) to how each was trained.
    """

    dataset: DatasetRecord = dataclasses.field(default_factory=DatasetRecord)
    samples: int | None = None
    networks: Mapping[str, NetworkTraining] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_json(cls, value: Any) -> TrainingRecord:
        """Read `training_data` as `pipeline.json` holds it.

        Folders written before the record was structured hold free text; it is kept as the
        dataset's description, and everything else is unknown.

        Raises:
            ValueError: the value is neither such text nor a record of the known fields.
        """
        if isinstance(value, str):
            return cls(dataset=DatasetRecord(description=value))
        fields = _checked_fields(cls, value, "training_data")
        networks = fields.get("networks", {})
        if not isinstance(networks, dict) or not set(networks) <= set(NETWORKS):
            raise ValueError(
                f"training_data.networks must map some of {list(NETWORKS)} to records, "
                f"not {networks!r}"
            )
        return cls(
            dataset=DatasetRecord(
                **_checked_fields(DatasetRecord, fields.get("dataset", {}), "training_data.dataset")
            ),
            samples=fields.get("samples"),
            networks={
                name: NetworkTraining(
                    **_checked_fields(NetworkTraining, record, f"training_data.networks.{name}")
                )
                for name, record in networks.items()
            },
        )

    def summary(self) -> str:
        """One line for people: the dataset, the samples, each network's steps and hours."""
        parts = [self.dataset.name or self.dataset.description or "unknown data"]
        if self.samples is not None:
            parts.append(f"{self.samples:,} samples")
        for name, network in self.networks.items():
            steps = "? steps" if network.steps is None else f"{network.steps:,} steps"
            hours = "" if network.hours is None else f", {network.hours:.2f} h"
            hardware = "" if network.hardware is None else f" on {network.hardware}"
            parts.append(f"{name} {steps}{hours}{hardware}")
        return "; ".join(parts)


def _checked_fields(cls: type, value: Any, where: str) -> dict[str, Any]:
    """`value` as keyword arguments of the record class `cls`: a JSON object of some of its
    fields, each number or text of its field's type (nested records are checked by their
    own call); `where` names the value in errors."""
    if not isinstance(value, dict):
        raise ValueError(f"{where} must be a JSON object, not {value!r}")
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(value) - set(hints))
    if unknown:
        raise ValueError(f"{where} has unknown keys {unknown}; it takes {sorted(hints)}")
    for name, item in value.items():
        kinds = typing.get_args(hints[name])
        if not kinds or not set(kinds) <= set(_JSON_KINDS):
            continue
        if not any(_JSON_KINDS[kind](item) for kind in kinds):
            expected = " or ".join(kind.__name__ for kind in kinds).replace("NoneType", "null")
            raise ValueError(f"{where}.{name} is {item!r}; it takes {expected}")
    return value


# JSON values a scalar field's type accepts (a bool is no number; a whole number is a float).
_JSON_KINDS: dict[type, Callable[[Any], bool]] = {
    int: lambda item: isinstance(item, int) and not isinstance(item, bool),
    float: lambda item: isinstance(item, int | float) and not isinstance(item, bool),
    str: lambda item: isinstance(item, str),
    type(None): lambda item: item is None,
}


@dataclasses.dataclass(frozen=True)
class PipelineMeta:
    """What a pipeline folder's `pipeline.json` says about its weights.

    Attributes:
        name: short name of the weights, e.g. "synthetic".
        licence: what the weights may be used for (inherits the training data's licence).
        training_data: how they were trained (`TrainingRecord`); the free text that older
            folders hold, or a record as JSON, is read with `TrainingRecord.from_json`.
        resolution: (height, width) of the model input in pixels.
        label_set: the parse label vocabulary ("lip-20").
        keypoint_set: the keypoint vocabulary ("coco-18").
        version: the tryon version that wrote the folder.
        categories: the garment categories the networks can dress (catalog category
            values such as "top"); None when the folder does not say, which servers treat
            as every category.
    """

    name: str
    licence: str
    training_data: TrainingRecord = dataclasses.field(default_factory=TrainingRecord)
    resolution: tuple[int, int] = (256, 192)
    label_set: str = "lip-20"
    keypoint_set: str = "coco-18"
    version: str = __version__
    categories: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.training_data, TrainingRecord):
            record = TrainingRecord.from_json(self.training_data)
            object.__setattr__(self, "training_data", record)  # frozen: set once, here
        if self.categories is not None:
            if isinstance(self.categories, str) or not all(
                isinstance(name, str) and name for name in self.categories
            ):
                raise ValueError(
                    f'categories must be a list of category names such as ["top"], '
                    f"not {self.categories!r}"
                )
            object.__setattr__(self, "categories", tuple(self.categories))


class PipelineComponents(NamedTuple):
    """The networks and description read from a pipeline folder."""

    meta: PipelineMeta
    parser: HumanParser
    gmm: GeometricMatcher
    tom: TryOnGenerator


def save_pipeline(
    directory: str | Path,
    parser: HumanParser,
    gmm: GeometricMatcher,
    tom: TryOnGenerator,
    meta: PipelineMeta,
    *,
    fp16: bool = False,
) -> Path:
    """Write a pipeline folder: `parser/`, `gmm/`, `tom/` and `pipeline.json`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for subfolder, component in zip(NETWORKS, (parser, gmm, tom), strict=True):
        component.save_pretrained(directory / subfolder, fp16=fp16)
    fields = dataclasses.asdict(meta)
    fields["resolution"] = list(meta.resolution)
    if meta.categories is None:
        del fields["categories"]  # unknown stays unknown, as in older folders
    else:
        fields["categories"] = list(meta.categories)
    (directory / PIPELINE_CONFIG_NAME).write_text(json.dumps(fields, indent=2) + "\n")
    return directory


def load_pipeline_components(
    directory: str | Path, *, parser_network: bool = True
) -> PipelineComponents:
    """Read a pipeline folder written by `save_pipeline`; networks in float32, eval mode.
    `parser_network` False leaves the parser's network out (`HumanParser`'s
    `build_network`).

    Raises:
        WeightsError: a file is missing or does not match the code.
    """
    directory = Path(directory)
    path = directory / PIPELINE_CONFIG_NAME
    fields = read_json(
        path, f"a pipeline folder holds {PIPELINE_CONFIG_NAME} and {', '.join(NETWORKS)}/"
    )
    try:
        fields["resolution"] = tuple(fields["resolution"])
        meta = PipelineMeta(**fields)
    except (KeyError, TypeError, ValueError) as error:
        raise WeightsError(
            f"{path} is malformed: {error}; fix it by hand or write the folder again with "
            "`tryon pack`"
        ) from error
    return PipelineComponents(
        meta=meta,
        parser=HumanParser.from_pretrained(directory / "parser", build_network=parser_network),
        gmm=GeometricMatcher.from_pretrained(directory / "gmm"),
        tom=TryOnGenerator.from_pretrained(directory / "tom"),
    )
