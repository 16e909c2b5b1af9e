"""Saving and loading one network as a folder: `config.json` plus `model.safetensors`.

A component folder holds the constructor arguments (`config.json`) and the weights
(`model.safetensors`, float32 or float16). Every network's module imports this one for
`PretrainedMixin`, so it imports none of them; the pipeline folder that bundles the
three networks is `tryon.models.bundle`, above them.
"""

from __future__ import annotations

import functools
import inspect
import json
from pathlib import Path
from typing import Any, TypeVar

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from tryon import __version__
from tryon.errors import WeightsError

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
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
    Keyword-only arguments say how one instance is built (a part left out), not what the
    component is: they are not recorded, and `from_pretrained` passes them through. A
    component that leaves parts out names them in `parts_left_out`; their saved weights
    are then not loaded.
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
            arguments = {
                name: value
                for name, value in bound.arguments.items()
                if signature.parameters[name].kind != inspect.Parameter.KEYWORD_ONLY
            }
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
        if self.parts_left_out:
            raise WeightsError(
                f"this {type(self).__name__} was built without its {', '.join(self.parts_left_out)}"
                " and cannot be saved: load it whole"
            )
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

    @property
    def parts_left_out(self) -> tuple[str, ...]:
        """Names of the child modules this instance was built without (none by default)."""
        return ()

    @classmethod
    def from_pretrained(cls: type[ModelT], directory: str | Path, **options: Any) -> ModelT:
        """Build the component from a folder written by `save_pretrained`, in float32, eval mode.

        options: the constructor's keyword-only arguments (how this instance is built).

        Raises:
            WeightsError: the folder, a file, or a weight is missing, or the folder holds
                another component or weights of other shapes.
        """
        directory = Path(directory)
        config = read_json(
            directory / CONFIG_NAME, f"a component folder holds {CONFIG_NAME} and {WEIGHTS_NAME}"
        )
        class_name = config.pop(CLASS_KEY, None)
        config.pop(VERSION_KEY, None)
        if class_name != cls.__name__:
            raise WeightsError(
                f"{directory} holds a {class_name!r}, not a {cls.__name__!r}; "
                "point to the matching component folder"
            )
        build_options = {
            name
            for name, parameter in inspect.signature(cls.__init__).parameters.items()
            if parameter.kind == inspect.Parameter.KEYWORD_ONLY
        }
        if set(options) - build_options:
            unknown = ", ".join(sorted(set(options) - build_options))
            raise TypeError(
                f"{cls.__name__}.from_pretrained takes no option {unknown}; its options: "
                f"{', '.join(sorted(build_options)) or 'none'}"
            )
        try:
            model = cls(**config, **options)
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
        left_out = tuple(f"{part}." for part in model.parts_left_out)
        state = {
            name: tensor.float() if tensor.is_floating_point() else tensor
            for name, tensor in state.items()
            if not name.startswith(left_out)
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
    if model.parts_left_out:
        raise ValueError(f"this model was built without its {', '.join(model.parts_left_out)}")
    grown = type(model)(**{**model.config, **changes})
    missing, unexpected = grown.load_state_dict(model.state_dict(), strict=False)
    if unexpected or any(not key.startswith(added) for key in missing):
        name = type(model).__name__
        raise ValueError(f"weights do not fit the grown {name}: {unexpected or missing}")
    weight = next(model.parameters())
    return grown.to(weight.device, weight.dtype)


def read_json(path: Path, folder_holds: str) -> dict[str, Any]:
    """The JSON object in `path` (a component's `config.json`, a bundle's `pipeline.json`);
    `folder_holds` says what the folder should hold, for the error when the file is missing.

    Raises:
        WeightsError: the file is missing, is not JSON, or holds something else than an object.
    """
    if not path.is_file():
        raise WeightsError(f"missing {path}; {folder_holds}")
    try:
        value = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise WeightsError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(value, dict):
        raise WeightsError(f"{path} must hold a JSON object")
    return value
