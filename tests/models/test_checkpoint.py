from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tiny_models import TINY_FACTORIES, image
from torch import nn

from tryon.cli import main
from tryon.errors import WeightsError
from tryon.models import GeometricMatcher, HumanParser, MultiScaleDiscriminator, TryOnGenerator
from tryon.models.bundle import (
    DatasetRecord,
    NetworkTraining,
    PipelineMeta,
    TrainingRecord,
    load_pipeline_components,
    save_pipeline,
)
from tryon.models.openvino_parser import export_status
from tryon.pipeline import BUNDLED_WEIGHTS

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


TRAINING = TrainingRecord(
    dataset=DatasetRecord(name="tiny", description="random tensors", source="this test"),
    samples=12,
    networks={
        "parser": NetworkTraining(steps=3, batch=2, hours=0.5, hardware="CPU", init=None),
        "tom": NetworkTraining(steps=4, precision="bfloat16", init="synthetic"),
    },
)


def test_pipeline_folder_round_trip(tmp_path: Path) -> None:
    parser, gmm, tom = (_trained(name) for name in ("parser", "gmm", "tom"))
    meta = PipelineMeta(
        name="tiny", licence="test only", training_data=TRAINING, resolution=(64, 48)
    )
    save_pipeline(tmp_path, parser, gmm, tom, meta, fp16=True)
    assert {p.name for p in tmp_path.iterdir()} == {"parser", "gmm", "tom", "pipeline.json"}
    components = load_pipeline_components(tmp_path)
    assert components.meta == meta
    assert components.meta.training_data.networks["tom"].init == "synthetic"
    assert isinstance(components.parser, HumanParser)
    assert isinstance(components.gmm, GeometricMatcher)
    assert isinstance(components.tom, TryOnGenerator)
    assert components.tom.config == tom.config


def test_pipeline_without_description_is_a_weights_error(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="pipeline.json"):
        load_pipeline_components(tmp_path)


@pytest.mark.parametrize("weights", ["synthetic", "viton"])
def test_bundled_weights_say_how_each_network_was_trained(weights: str) -> None:
    folder = BUNDLED_WEIGHTS / weights
    if not (folder / "pipeline.json").exists():
        pytest.skip(f"no bundled {weights} weights")
    training = load_pipeline_components(folder).meta.training_data
    assert training.dataset.name and training.dataset.source
    assert training.samples and training.samples > 1000
    assert set(training.networks) == {"parser", "gmm", "tom"}
    for name, network in training.networks.items():
        assert network.steps and network.batch and network.hardware
        assert network.recipe == f"configs/{weights}/{name}.yaml"
    assert "session" not in (folder / "pipeline.json").read_text().lower()


def _tiny_pipeline_folder(folder: Path, **training_data: object) -> Path:
    """A tiny pipeline folder whose `pipeline.json` holds `training_data` as given."""
    parser, gmm, tom = (TINY_FACTORIES[name]() for name in ("parser", "gmm", "tom"))
    save_pipeline(folder, parser, gmm, tom, PipelineMeta(name="tiny", licence="test only"))
    fields = json.loads((folder / "pipeline.json").read_text())
    (folder / "pipeline.json").write_text(json.dumps(fields | training_data))
    return folder


def test_a_folder_with_the_old_free_text_still_loads_keeping_the_text(tmp_path: Path) -> None:
    folder = _tiny_pipeline_folder(tmp_path, training_data="10,000 synthetic samples, 2-core CPU")
    training = load_pipeline_components(folder).meta.training_data
    assert training.dataset.description == "10,000 synthetic samples, 2-core CPU"
    assert training.samples is None
    assert training.networks == {}


def test_categories_round_trip_and_stay_unknown_when_not_said(tmp_path: Path) -> None:
    parser, gmm, tom = (TINY_FACTORIES[name]() for name in ("parser", "gmm", "tom"))
    meta = PipelineMeta(name="tiny", licence="test only", categories=["top", "dress"])
    save_pipeline(tmp_path / "said", parser, gmm, tom, meta)
    assert load_pipeline_components(tmp_path / "said").meta.categories == ("top", "dress")
    unsaid = _tiny_pipeline_folder(tmp_path / "unsaid")
    assert "categories" not in (unsaid / "pipeline.json").read_text()
    assert load_pipeline_components(unsaid).meta.categories is None


def test_categories_that_are_not_a_list_of_names_are_a_weights_error(tmp_path: Path) -> None:
    folder = _tiny_pipeline_folder(tmp_path, categories="top")
    with pytest.raises(WeightsError, match="categories must be a list"):
        load_pipeline_components(folder)


@pytest.mark.parametrize(
    ("training_data", "names"),
    [
        ({"dataset": {"name": "x"}, "pairs": 3}, "unknown keys ['pairs']"),
        ({"samples": "many"}, "training_data.samples is 'many'"),
        ({"networks": {"tom": {"steps": 1.5}}}, "training_data.networks.tom.steps is 1.5"),
        ({"networks": {"vae": {}}}, "training_data.networks must map some of"),
        ({"dataset": "synthetic"}, "training_data.dataset must be a JSON object"),
    ],
)
def test_a_malformed_training_record_is_a_weights_error_naming_the_field(
    tmp_path: Path, training_data: dict, names: str
) -> None:
    folder = _tiny_pipeline_folder(tmp_path, training_data=training_data)
    with pytest.raises(WeightsError, match="pipeline.json is malformed") as raised:
        load_pipeline_components(folder)
    assert names in str(raised.value)
    assert "tryon pack" in str(raised.value)


def _run_folder(run: Path, step: int, seconds: float) -> None:
    """A training run as `tryon train` leaves it: components, checkpoint and best step."""
    for name in ("parser", "gmm", "tom"):
        TINY_FACTORIES[name]().save_pretrained(run / name)
        TINY_FACTORIES[name]().save_pretrained(run / "best" / name)
    torch.save({"step": step, "seconds": seconds, "precision": "bfloat16"}, run / "checkpoint.pt")
    (run / "best" / "score.json").write_text(json.dumps({"step": 500, "score": 0.5}))
    (run / "validation.csv").write_text("step,seconds,score\n0,1.0,0.1\n500,1800.0,0.5\n")
    (run / "config.yaml").write_text(
        "init: tryon/weights/synthetic/tom\ntraining: {batch: 8}\n"
        "losses: {adversarial_weight: 0.1, feature_weight: 2.0}\n"
    )


def test_pack_records_each_networks_run_from_its_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    _run_folder(run, step=800, seconds=5400.0)
    outside = tmp_path / "outside" / "gmm"  # a component folder that is not in a run
    TINY_FACTORIES["gmm"]().save_pretrained(outside)
    (tmp_path / "configs" / "mine").mkdir(parents=True)
    (tmp_path / "configs" / "mine" / "tom.yaml").write_text("steps: 800\n")
    monkeypatch.chdir(tmp_path)
    arguments = ["pack", "--parser", str(run / "best" / "parser"), "--gmm", str(outside),
                 "--tom", str(run / "tom"), "--out", str(tmp_path / "packed"), "--name", "mine",
                 "--licence", "test only", "--dataset", "tiny", "--samples", "12",
                 "--hardware", "NVIDIA H100"]  # fmt: skip
    with pytest.raises(SystemExit) as exited:
        main(arguments)
    assert exited.value.code == 0

    assert export_status(tmp_path / "packed" / "parser") is None  # the parser's OpenVINO export
    training = load_pipeline_components(tmp_path / "packed").meta.training_data
    assert training.dataset == DatasetRecord(name="tiny")
    assert training.samples == 12
    assert training.networks["tom"] == NetworkTraining(
        steps=800, batch=8, hours=1.5, hardware="NVIDIA H100", precision="bfloat16",
        init="tryon/weights/synthetic/tom", recipe="configs/mine/tom.yaml",
        losses={"adversarial_weight": 0.1, "feature_weight": 2.0},
    )  # fmt: skip
    assert training.networks["parser"] == NetworkTraining(
        steps=500, batch=8, hours=0.5, hardware="NVIDIA H100", precision="bfloat16",
        init="tryon/weights/synthetic/tom",
        losses={"adversarial_weight": 0.1, "feature_weight": 2.0},
    )  # fmt: skip
    assert training.networks["gmm"] == NetworkTraining(hardware="NVIDIA H100")
