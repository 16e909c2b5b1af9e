from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tiny_models import TINY_FACTORIES, image
from torch import nn

from tryon.errors import WeightsError
from tryon.models import (
    GeometricMatcher,
    HumanParser,
    MultiScaleDiscriminator,
    PipelineMeta,
    TryOnGenerator,
    load_pipeline_components,
    save_pipeline,
)

SIZE = (64, 48)


def _inputs(name: str, batch: int = 1) -> tuple[torch.Tensor, ...]:
    if name == "parser":
        return (image(batch, 3, *SIZE),)
    if name == "discriminator":
        return image(batch, 26, *SIZE), image(batch, 3, *SIZE)
    return image(batch, 22, *SIZE), image(batch, 3, *SIZE), image(batch, 1, *SIZE, low=0.0)


def _flatten(output: object) -> list[torch.Tensor]:
    if output is None:  # a GMM without a flow stage has no flow
        return []
    if isinstance(output, torch.Tensor):
        return [output]
    assert isinstance(output, tuple | list)
    return [tensor for item in output for tensor in _flatten(item)]


def _trained(name: str) -> nn.Module:
    """A tiny network whose weights and batch-norm statistics are not the initial ones."""
    model = TINY_FACTORIES[name]()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
        model.train()
        model(*_inputs(name, batch=2))  # moves the running statistics
    return model.eval()


@pytest.mark.parametrize("name", list(TINY_FACTORIES))
def test_round_trip_gives_identical_outputs(name: str, tmp_path: Path) -> None:
    model = _trained(name)
    model.save_pretrained(tmp_path)
    loaded = type(model).from_pretrained(tmp_path)
    assert loaded.config == model.config
    assert not loaded.training
    inputs = _inputs(name)
    with torch.inference_mode():
        for expected, actual in zip(
            _flatten(model(*inputs)), _flatten(loaded(*inputs)), strict=True
        ):
            assert torch.equal(expected, actual)


@pytest.mark.parametrize("name", list(TINY_FACTORIES))
def test_fp16_checkpoint_loads_as_float32_close_to_the_original(name: str, tmp_path: Path) -> None:
    model = _trained(name)
    model.save_pretrained(tmp_path / "fp32")
    model.save_pretrained(tmp_path / "fp16", fp16=True)
    half_size = (tmp_path / "fp16" / "model.safetensors").stat().st_size
    assert half_size < 0.6 * (tmp_path / "fp32" / "model.safetensors").stat().st_size
    loaded = type(model).from_pretrained(tmp_path / "fp16")
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    inputs = _inputs(name)
    with torch.inference_mode():
        for expected, actual in zip(
            _flatten(model(*inputs)), _flatten(loaded(*inputs)), strict=True
        ):
            assert torch.allclose(expected, actual, atol=2e-2, rtol=1e-2)


def test_config_records_every_constructor_argument(tmp_path: Path) -> None:
    gmm = GeometricMatcher(person_channels=7, feature_channels=(8, 8, 8, 8), grid_size=(3, 3))
    gmm.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["_class_name"] == "GeometricMatcher"
    assert config["person_channels"] == 7
    assert config["grid_size"] == [3, 3]
    assert config["regressor_width"] == 64  # defaults are written too
    assert GeometricMatcher.from_pretrained(tmp_path).grid_size == (3, 3)


def test_missing_folder_is_a_weights_error(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="config.json"):
        TryOnGenerator.from_pretrained(tmp_path / "nowhere")


def test_missing_weights_file_is_a_weights_error(tmp_path: Path) -> None:
    TINY_FACTORIES["tom"]().save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(WeightsError, match="missing weights"):
        TryOnGenerator.from_pretrained(tmp_path)


def test_another_component_is_a_weights_error(tmp_path: Path) -> None:
    TINY_FACTORIES["tom"]().save_pretrained(tmp_path)
    with pytest.raises(WeightsError, match="'TryOnGenerator', not a 'GeometricMatcher'"):
        GeometricMatcher.from_pretrained(tmp_path)


def test_weights_of_other_shapes_are_a_weights_error(tmp_path: Path) -> None:
    TryOnGenerator(base_channels=8, max_channels=32).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["base_channels"] = 16
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(WeightsError, match="do not match TryOnGenerator"):
        TryOnGenerator.from_pretrained(tmp_path)


def test_unknown_config_key_is_a_weights_error(tmp_path: Path) -> None:
    MultiScaleDiscriminator(base_channels=8).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["colour"] = "red"
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(WeightsError, match="does not fit"):
        MultiScaleDiscriminator.from_pretrained(tmp_path)


def test_pipeline_folder_round_trip(tmp_path: Path) -> None:
    parser, gmm, tom = (_trained(name) for name in ("parser", "gmm", "tom"))
    meta = PipelineMeta(name="tiny", licence="test only", training_data="none", resolution=(64, 48))
    save_pipeline(tmp_path, parser, gmm, tom, meta, fp16=True)
    assert {p.name for p in tmp_path.iterdir()} == {"parser", "gmm", "tom", "pipeline.json"}
    components = load_pipeline_components(tmp_path)
    assert components.meta == meta
    assert isinstance(components.parser, HumanParser)
    assert isinstance(components.gmm, GeometricMatcher)
    assert isinstance(components.tom, TryOnGenerator)
    assert components.tom.config == tom.config


def test_pipeline_without_description_is_a_weights_error(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="pipeline.json"):
        load_pipeline_components(tmp_path)
