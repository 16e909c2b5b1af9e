"""Saving and loading networks as folders: `config.json` plus `model.safetensors`.

A component folder holds the constructor arguments (`config.json`) and the weights
(`model.safetensors`, float32 or float16). A pipeline folder holds one component folder
each for `parser/`, `gmm/` and `tom/` plus `pipeline.json` describing the bundle.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from tryon import __version__
from tryon.errors import WeightsError

if TYPE_CHECKING:
    from tryon.models.gmm import GeometricMatcher
    from tryon.models.parser import HumanParser
    from tryon.models.tom import TryOnGenerator

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
PIPELINE_CONFIG_NAME = "pipeline.json"
CLASS_KEY = "_class_name"
VERSION_KEY = "_tryon_version"

ModelT = TypeVar("ModelT", bound="PretrainedMixin")


def _json_value(value: Any) -> Any:
    """Constructor arguments as JSON values (tuples become lists)."""
    if isinstance(value, tuple | list):
        return [_json_value(item) for item in value]
    return value


class PretrainedMixin:
    """Gives an `nn.Module` `save_pretrained` / `from_pretrained` and a `config` dict.

    The subclass's constructor arguments are recorded automatically (with defaults filled
    in), so they must be JSON values: numbers, strings, booleans, None, lists/tuples.
    """

    config: dict[str, Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" not in cls.__dict__:
            return
        init = cls.__init__
        signature = inspect.signature(init)

        @functools.wraps(init)
        def recording_init(self: PretrainedMixin, *args: Any, **kw: Any) -> None:
            bound = signature.bind(self, *args, **kw)
            bound.apply_defaults()
            init(self, *args, **kw)
            arguments = dict(bound.arguments)
            arguments.pop("self")
            # Set after nn.Module.__init__ has run; a plain dict is not registered as state.
            self.config = {name: _json_value(value) for name, value in arguments.items()}

        cls.__init__ = recording_init  # type: ignore[method-assign]

    def save_pretrained(self, directory: str | Path, *, fp16: bool = False) -> Path:
        """Write `config.json` and `model.safetensors` into `directory` (created if needed).

        Args:
            fp16: store floating-point tensors as float16 (half the size, for bundling);
                `from_pretrained` always loads float32.

        Returns:
            The directory.
        """
        assert isinstance(self, nn.Module)
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        header = {CLASS_KEY: type(self).__name__, VERSION_KEY: __version__}
        (directory / CONFIG_NAME).write_text(json.dumps(header | self.config, indent=2) + "\n")
        tensors = {}
        for name, tensor in self.state_dict().items():
            tensor = tensor.detach().cpu()
            if fp16 and tensor.is_floating_point():
                tensor = tensor.half()
            tensors[name] = tensor.contiguous()
        save_file(tensors, str(directory / WEIGHTS_NAME), metadata={"format": "pt"})
        return directory

    @classmethod
    def from_pretrained(cls: type[ModelT], directory: str | Path) -> ModelT:
        """Build the component from a folder written by `save_pretrained`, in float32, eval mode.

        Raises:
            WeightsError: the folder, a file, or a weight is missing, or the folder holds
                another component or weights of other shapes.
        """
        directory = Path(directory)
        config = _read_json(directory / CONFIG_NAME)
        class_name = config.pop(CLASS_KEY, None)
        config.pop(VERSION_KEY, None)
        if class_name != cls.__name__:
            raise WeightsError(
                f"{directory} holds a {class_name!r}, not a {cls.__name__!r}; "
                "point to the matching component folder"
            )
        try:
            model = cls(**config)
        except (TypeError, ValueError) as error:
            raise WeightsError(
                f"{directory / CONFIG_NAME} does not fit {cls.__name__}: {error}"
            ) from error
        weights_path = directory / WEIGHTS_NAME
        if not weights_path.is_file():
            raise WeightsError(f"missing weights file {weights_path}")
        try:
            state = load_file(str(weights_path))
        except (SafetensorError, OSError) as error:
            raise WeightsError(f"cannot read {weights_path}: {error}") from error
        state = {
            name: tensor.float() if tensor.is_floating_point() else tensor
            for name, tensor in state.items()
        }
        assert isinstance(model, nn.Module)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as error:
            raise WeightsError(
                f"weights in {weights_path} do not match {cls.__name__}: {error}"
            ) from error
        model.eval()
        return model


def grown_copy(model: ModelT, added: tuple[str, ...], **changes: Any) -> ModelT:
    """A copy of a trained `model` built with `changes` to its config and carrying all its
    weights; the weights whose names start with one of `added` are the new parts and keep
    their initialisation. The copy is in training mode, on `model`'s device and dtype.

    Raises:
        ValueError: a weight of `model` has no place in the copy, or the copy has new
            weights outside `added` (the change is not a pure addition).
    """
    assert isinstance(model, nn.Module)
    grown = type(model)(**{**model.config, **changes})
    missing, unexpected = grown.load_state_dict(model.state_dict(), strict=False)
    if unexpected or any(not key.startswith(added) for key in missing):
        name = type(model).__name__
        raise ValueError(f"weights do not fit the grown {name}: {unexpected or missing}")
    weight = next(model.parameters())
    return grown.to(weight.device, weight.dtype)


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise WeightsError(
            f"missing {path}; a weights folder needs {CONFIG_NAME} and {WEIGHTS_NAME}"
        )
    try:
        value = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise WeightsError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(value, dict):
        raise WeightsError(f"{path} must hold a JSON object")
    return value


@dataclasses.dataclass(frozen=True)
class PipelineMeta:
    """What a pipeline folder's `pipeline.json` says about its weights.

    Attributes:
        name: short name of the weights, e.g. "synthetic".
        licence: what the weights may be used for (inherits the training data's licence).
        training_data: where the training data came from and how much was used.
        resolution: (height, width) of the model input in pixels.
        label_set: the parse label vocabulary ("lip-20").
        keypoint_set: the keypoint vocabulary ("coco-18").
        version: the tryon version that wrote the folder.
    """

    name: str
    licence: str
    training_data: str
    resolution: tuple[int, int] = (256, 192)
    label_set: str = "lip-20"
    keypoint_set: str = "coco-18"
    version: str = __version__


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
    for subfolder, component in (("parser", parser), ("gmm", gmm), ("tom", tom)):
        component.save_pretrained(directory / subfolder, fp16=fp16)
    fields = dataclasses.asdict(meta)
    fields["resolution"] = list(meta.resolution)
    (directory / PIPELINE_CONFIG_NAME).write_text(json.dumps(fields, indent=2) + "\n")
    return directory


def load_pipeline_components(directory: str | Path) -> PipelineComponents:
    """Read a pipeline folder written by `save_pipeline`; networks in float32, eval mode.

    Raises:
        WeightsError: a file is missing or does not match the code.
    """
    # The networks' modules import this one for the mixin, so import them when called.
    from tryon.models.gmm import GeometricMatcher
    from tryon.models.parser import HumanParser
    from tryon.models.tom import TryOnGenerator

    directory = Path(directory)
    fields = _read_json(directory / PIPELINE_CONFIG_NAME)
    try:
        fields["resolution"] = tuple(fields["resolution"])
        meta = PipelineMeta(**fields)
    except (KeyError, TypeError) as error:
        raise WeightsError(f"{directory / PIPELINE_CONFIG_NAME} is malformed: {error}") from error
    return PipelineComponents(
        meta=meta,
        parser=HumanParser.from_pretrained(directory / "parser"),
        gmm=GeometricMatcher.from_pretrained(directory / "gmm"),
        tom=TryOnGenerator.from_pretrained(directory / "tom"),
    )
