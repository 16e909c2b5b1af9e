"""Held-out validation during training: scores logged, the best step kept, over resumes."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from tryon.cli import app
from tryon.data.synth.writer import write_dataset
from tryon.data.viton import VitonDataset
from tryon.errors import InvalidInputError
from tryon.models import GeometricMatcher, HumanParser, TryOnGenerator
from tryon.representation import GMM_PERSON_CHANNELS, TOM_PERSON_CHANNELS
from tryon.train.components import GmmTrainer, ParserTrainer, TomTrainer
from tryon.train.loop import TrainConfig, read_losses, run_training
from tryon.train.validation import Validator

SIZE = (128, 96)
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """Four training pairs and three held-out pairs from another seed."""
    train, held_out = tmp_path_factory.mktemp("train"), tmp_path_factory.mktemp("held_out")
    write_dataset(train, n=4, seed=31)
    write_dataset(held_out, n=3, seed=32)
    return train, held_out


def _gmm_trainer() -> GmmTrainer:
    torch.manual_seed(0)
    gmm = GeometricMatcher(
        person_channels=GMM_PERSON_CHANNELS,
        feature_channels=(8, 8, 16, 16),
        regressor_width=16,
        correlation_size=(8, 6),
    )
    return GmmTrainer(lr=3e-3, device=CPU, gmm=gmm)


def _validator(held_out, out, size=3) -> Validator:
    return Validator(VitonDataset(held_out, size=SIZE), batch=2, size=size, out=out)


def test_the_best_step_is_kept_and_its_weights_score_what_was_logged(tmp_path, datasets):
    train, held_out = datasets
    out = tmp_path / "run"
    config = TrainConfig(
        data=train, out=out, steps=6, batch=2, size=SIZE, workers=0, val_every=2, log_every=2
    )
    validator = _validator(held_out, out)
    run_training(_gmm_trainer(), VitonDataset(train, size=SIZE), config, CPU, validator=validator)

    logged = read_losses(out / "validation.csv")
    assert logged["step"] == [0.0, 2.0, 4.0, 6.0]  # 0: the starting weights
    best = json.loads((out / "best" / "score.json").read_text())
    assert best["metric"] == "warp_iou"
    assert best["score"] == pytest.approx(max(logged["warp_iou"]), abs=1e-5)
    assert best["step"] == logged["step"][logged["warp_iou"].index(max(logged["warp_iou"]))]

    # The kept folder is that step's network: scoring it again gives the logged score.
    reloaded = GmmTrainer(
        lr=1e-3, device=CPU, gmm=GeometricMatcher.from_pretrained(out / "best" / "gmm")
    )
    reloaded.gmm.eval()
    with torch.no_grad():
        assert reloaded.validate(validator.batches) == pytest.approx(best["score"], abs=1e-4)


def test_a_resumed_run_only_replaces_the_best_with_a_better_one(tmp_path, datasets, monkeypatch):
    _, held_out = datasets
    out = tmp_path / "run"
    trainer = _gmm_trainer()
    monkeypatch.setattr(trainer, "validate", lambda batches: 0.5)
    _validator(held_out, out)(trainer, 10, 1.0, CPU)
    saved = (out / "best" / "gmm" / "model.safetensors").read_bytes()

    resumed = _validator(held_out, out)  # a new process, as after --resume
    assert resumed.best == {"step": 10, "metric": "warp_iou", "score": 0.5}
    with torch.no_grad():  # different weights, a worse score: the best folder stays as it was
        next(trainer.gmm.parameters()).add_(1.0)
    monkeypatch.setattr(trainer, "validate", lambda batches: 0.4)
    resumed(trainer, 20, 2.0, CPU)
    assert resumed.best["step"] == 10
    assert (out / "best" / "gmm" / "model.safetensors").read_bytes() == saved

    monkeypatch.setattr(trainer, "validate", lambda batches: 0.6)
    resumed(trainer, 30, 3.0, CPU)
    assert json.loads((out / "best" / "score.json").read_text())["step"] == 30
    assert (out / "best" / "gmm" / "model.safetensors").read_bytes() != saved
    assert read_losses(out / "validation.csv")["warp_iou"] == [0.5, 0.4, 0.6]


@pytest.mark.parametrize("component", ["parser", "tom"])
def test_parser_and_tom_score_between_zero_and_one(datasets, tmp_path, component):
    _, held_out = datasets
    torch.manual_seed(0)
    if component == "parser":
        trainer = ParserTrainer(
            lr=1e-3, device=CPU, parser=HumanParser(decoder_channels=(16, 16, 8, 8, 8))
        )
    else:
        gmm = GeometricMatcher(
            person_channels=GMM_PERSON_CHANNELS, feature_channels=(8, 8, 16, 16), regressor_width=16
        )
        tom = TryOnGenerator(person_channels=TOM_PERSON_CHANNELS, base_channels=8, max_channels=32)
        trainer = TomTrainer(lr=1e-3, device=CPU, gmm=gmm, tom=tom)
    for net in trainer.networks.values():
        net.eval()
    with torch.no_grad():
        score = trainer.validate(_validator(held_out, tmp_path).batches)
    assert 0.0 < score < 1.0


def test_validating_on_the_training_pairs_is_refused(tmp_path, datasets):
    train, _ = datasets
    arguments = ["train", "gmm", "--data", str(train), "--out", str(tmp_path / "run")]
    result = CliRunner().invoke(app, [*arguments, "--val-data", str(train), "--steps", "1"])
    assert isinstance(result.exception, InvalidInputError)
    assert "held out from training" in str(result.exception)
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_cli_trains_with_validation_and_reports_the_best_step(tmp_path, datasets):
    train, held_out = datasets
    out = tmp_path / "run"
    arguments = ["train", "gmm", "--data", str(train), "--out", str(out), "--size", "128x96"]
    options = ["--val-data", str(held_out), "--val-every", "1", "--steps", "2", "--batch", "2"]
    result = CliRunner().invoke(app, [*arguments, *options, "--workers", "0"])
    assert result.exit_code == 0, result.output
    assert "best on --val-data: warp_iou" in result.output
    assert (out / "best" / "gmm" / "config.json").exists()
    assert read_losses(out / "validation.csv")["step"] == [0.0, 1.0, 2.0]


def test_the_adversarial_weight_is_for_the_tom_only(tmp_path, datasets):
    train, _ = datasets
    arguments = ["train", "gmm", "--data", str(train), "--out", str(tmp_path / "run")]
    result = CliRunner().invoke(app, [*arguments, "--adversarial-weight", "0.01"])
    assert isinstance(result.exception, InvalidInputError)
    assert "use it with tom" in str(result.exception)


def test_curves_show_the_held_out_score_beside_the_losses(tmp_path):
    from PIL import Image

    from tryon.train.curves import plot_runs

    for name, validated in (("plain", False), ("validated", True)):
        run = tmp_path / name
        run.mkdir()
        (run / "losses.csv").write_text("step,seconds,loss\n1,0.1,0.9\n2,0.2,0.7\n")
        if validated:
            (run / "validation.csv").write_text("step,seconds,warp_iou\n0,0.0,0.5\n2,0.2,0.6\n")
    out = plot_runs([tmp_path / "plain", tmp_path / "validated"], tmp_path / "curves.png")
    assert Image.open(out).size[0] > 2 * Image.open(out).size[1]  # two panels side by side
