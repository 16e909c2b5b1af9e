"""Held-out validation during training: scores logged, the best step kept, over resumes."""

from __future__ import annotations

import json

import pytest
import torch
from recipes import tiny_recipe, train
from tiny_trainers import tiny_gmm_trainer

from tryon.data.synth.writer import write_dataset
from tryon.data.viton import VitonDataset
from tryon.errors import InvalidInputError
from tryon.models import GeometricMatcher, HumanParser, TryOnGenerator
from tryon.models.parser import keypoint_heatmaps
from tryon.representation import GMM_PERSON_CHANNELS, TOM_PERSON_CHANNELS
from tryon.train.components import GmmTrainer, ParserTrainer, TomTrainer
from tryon.train.config import Schedule
from tryon.train.logs import read_losses
from tryon.train.loop import run_training
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
    return tiny_gmm_trainer(lr=3e-3)


def _schedule(**settings) -> Schedule:
    """A run on the tiny training set: batches of 2, loaded in this process."""
    return Schedule(batch=2, workers=0, **settings)


def _validator(held_out, out, size=3) -> Validator:
    """Scores the first `size` held-out pairs every 2 steps."""
    return Validator(VitonDataset(held_out, size=SIZE), batch=2, size=size, out=out, every=2)


def test_the_best_step_is_kept_and_its_weights_score_what_was_logged(tmp_path, datasets):
    train, held_out = datasets
    out = tmp_path / "run"
    validator = _validator(held_out, out)
    data = VitonDataset(train, size=SIZE)
    run_training(
        _gmm_trainer(), data, _schedule(steps=6, log_every=2), out, CPU, validator=validator
    )

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
        assert reloaded.validate(validator.batches)["warp_iou"] == pytest.approx(
            best["score"], abs=1e-4
        )


def test_a_resumed_run_keeps_its_best_and_replaces_it_only_with_a_better_one(
    tmp_path, datasets, monkeypatch
):
    _, held_out = datasets
    out = tmp_path / "run"
    trainer = _gmm_trainer()
    first = _validator(held_out, out)
    first.start(0)
    monkeypatch.setattr(trainer, "validate", lambda batches: {"warp_iou": 0.5})
    first(trainer, 10, 1.0, CPU)
    saved = (out / "best" / "gmm" / "model.safetensors").read_bytes()

    resumed = _validator(held_out, out)  # a new process, as after --resume
    resumed.start(10)
    assert resumed.best == {
        "step": 10,
        "metric": "warp_iou",
        "score": 0.5,
        "held_out": "3 pairs of held-out set",
    }
    with torch.no_grad():  # different weights, a worse score: the best folder stays as it was
        next(trainer.gmm.parameters()).add_(1.0)
    monkeypatch.setattr(trainer, "validate", lambda batches: {"warp_iou": 0.4})
    resumed(trainer, 20, 2.0, CPU)
    assert resumed.best["step"] == 10
    assert (out / "best" / "gmm" / "model.safetensors").read_bytes() == saved

    monkeypatch.setattr(trainer, "validate", lambda batches: {"warp_iou": 0.6})
    resumed(trainer, 30, 3.0, CPU)
    assert json.loads((out / "best" / "score.json").read_text())["step"] == 30
    assert (out / "best" / "gmm" / "model.safetensors").read_bytes() != saved
    assert read_losses(out / "validation.csv")["warp_iou"] == [0.5, 0.4, 0.6]
    assert sorted(p.name for p in out.iterdir()) == ["best", "validation.csv"]  # no leftovers


def test_a_run_is_resumed_only_on_the_held_out_pairs_it_chose_its_best_on(
    tmp_path, datasets, monkeypatch
):
    _, held_out = datasets
    out = tmp_path / "run"
    trainer = _gmm_trainer()
    monkeypatch.setattr(trainer, "validate", lambda batches: {"warp_iou": 0.5})
    first = _validator(held_out, out)
    first.start(0)
    first(trainer, 10, 1.0, CPU)
    log = (out / "validation.csv").read_text()

    with pytest.raises(InvalidInputError, match="same validation path, pairs and size"):
        _validator(held_out, out, size=2).start(10)
    assert (out / "validation.csv").read_text() == log  # nothing touched


def test_resuming_scores_only_new_steps_and_forgets_steps_it_trains_again(tmp_path, datasets):
    train, held_out = datasets
    out = tmp_path / "run"
    schedule = _schedule(steps=4, checkpoint_every=4)
    data = VitonDataset(train, size=SIZE)
    run_training(_gmm_trainer(), data, schedule, out, CPU, validator=_validator(held_out, out))
    # A run killed after scoring step 6 but before checkpointing it: step 6 is trained again.
    with (out / "validation.csv").open("a") as handle:
        handle.write("6,9.0,0.99\n")
    schedule.steps = 8
    validator = _validator(held_out, out)
    run_training(_gmm_trainer(), data, schedule, out, CPU, resume=True, validator=validator)
    assert read_losses(out / "validation.csv")["step"] == [0.0, 2.0, 4.0, 6.0, 8.0]


def test_a_fresh_run_ignores_what_a_run_killed_before_its_first_checkpoint_left(tmp_path, datasets):
    train, held_out = datasets
    out = tmp_path / "run"
    (out / "best").mkdir(parents=True)
    (out / "best" / "score.json").write_text('{"step": 7, "metric": "warp_iou", "score": 2.0}')
    (out / "validation.csv").write_text("step,seconds,warp_iou\n7,1.0,2.0\n")
    validator = _validator(held_out, out)
    data = VitonDataset(train, size=SIZE)
    run_training(_gmm_trainer(), data, _schedule(steps=2), out, CPU, validator=validator)
    assert read_losses(out / "validation.csv")["step"] == [0.0, 2.0]
    assert validator.best["step"] in (0, 2) and validator.best["score"] < 1.0


def test_a_step_with_nothing_to_score_never_becomes_the_best(tmp_path, datasets, monkeypatch):
    _, held_out = datasets
    validator = _validator(held_out, tmp_path / "run")
    trainer = _gmm_trainer()
    monkeypatch.setattr(trainer, "validate", lambda batches: {"warp_iou": float("nan")})
    validator(trainer, 0, 0.0, CPU)
    assert validator.best is None and not (tmp_path / "run" / "best").exists()
    monkeypatch.setattr(trainer, "validate", lambda batches: {"warp_iou": 0.3})
    validator(trainer, 2, 1.0, CPU)
    assert validator.best["step"] == 2


def test_validation_leaves_the_networks_in_the_mode_it_found(tmp_path, datasets):
    _, held_out = datasets
    trainer = _gmm_trainer()
    trainer.gmm.train()
    _validator(held_out, tmp_path / "run")(trainer, 0, 0.0, CPU)
    assert trainer.gmm.training


def _tiny_tom_trainer() -> TomTrainer:
    """A TOM trainer on a few-channel GMM and TOM, untrained."""
    gmm = GeometricMatcher(
        person_channels=GMM_PERSON_CHANNELS, feature_channels=(8, 8, 16, 16), regressor_width=16
    )
    tom = TryOnGenerator(person_channels=TOM_PERSON_CHANNELS, base_channels=8, max_channels=32)
    return TomTrainer(lr=1e-3, device=CPU, gmm=gmm, tom=tom)


@pytest.mark.parametrize("component", ["parser", "tom"])
def test_parser_and_tom_score_between_zero_and_one(datasets, tmp_path, component):
    _, held_out = datasets
    torch.manual_seed(0)
    if component == "parser":
        trainer = ParserTrainer(
            lr=1e-3, device=CPU, parser=HumanParser(decoder_channels=(16, 16, 8, 8, 8))
        )
    else:
        trainer = _tiny_tom_trainer()
    for net in trainer.networks.values():
        net.eval()
    with torch.no_grad():
        scores = trainer.validate(_validator(held_out, tmp_path).batches)
    assert 0.0 < scores[trainer.validation_metric] < 1.0


def test_validating_on_the_training_pairs_is_refused(tmp_path, datasets):
    train_data, _ = datasets
    out = tmp_path / "run"
    recipe = tiny_recipe(tmp_path / "r.yaml", "gmm")
    result = train(
        "gmm", "--config", recipe, "--data", train_data, "--out", out, "--val-data", train_data
    )
    assert isinstance(result.exception, InvalidInputError)
    assert "4 of the validation pairs are training pairs too" in str(result.exception)
    assert not (out / "checkpoint.pt").exists() and not (out / "config.yaml").exists()

    # Another pairs file in the same folder is refused too when it shares a pair.
    shared = (train_data / "pairs.txt").read_text().splitlines()[0]
    (tmp_path / "mixed.txt").write_text(shared + "\n")
    validation = {"path": str(train_data), "pairs": str(tmp_path / "mixed.txt")}
    recipe = tiny_recipe(tmp_path / "r.yaml", "gmm", validation=validation)
    result = train("gmm", "--config", recipe, "--data", train_data, "--out", out)
    assert "1 of the validation pairs are training pairs too" in str(result.exception)


def test_cli_trains_with_validation_and_reports_the_best_step(tmp_path, datasets):
    train_data, held_out = datasets
    out = tmp_path / "run"
    recipe = tiny_recipe(tmp_path / "r.yaml", "gmm", validation={"every": 1})
    arguments = ["--config", recipe, "--data", train_data, "--out", out, "--steps", 2]
    result = train("gmm", *arguments, "--val-data", held_out)
    assert result.exit_code == 0, result.output
    assert "best on the held-out pairs: warp_iou" in result.output
    assert (out / "best" / "gmm" / "config.json").exists()
    assert read_losses(out / "validation.csv")["step"] == [0.0, 1.0, 2.0]


def test_curves_show_the_held_out_score_of_validated_runs(tmp_path, monkeypatch):
    from tryon.train import curves

    drawn = []
    monkeypatch.setattr(curves, "_plot_validation", lambda axis, path: drawn.append(path))
    for name, validated in (("plain", False), ("validated", True)):
        run = tmp_path / name
        run.mkdir()
        (run / "losses.csv").write_text("step,seconds,loss\n1,0.1,0.9\n2,0.2,0.7\n")
        if validated:
            (run / "validation.csv").write_text("step,seconds,warp_iou\n0,0.0,0.5\n2,0.2,0.6\n")
    out = curves.plot_runs([tmp_path / "plain", tmp_path / "validated"], tmp_path / "curves.png")
    assert out.exists()
    assert drawn == [tmp_path / "validated" / "validation.csv"]


def test_the_held_out_score_is_drawn_on_its_own_axis(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tryon.train.curves import _plot_validation

    (tmp_path / "validation.csv").write_text("step,seconds,warp_iou\n0,0.0,0.5\n2,0.2,0.6\n")
    figure, axis = plt.subplots()
    _plot_validation(axis, tmp_path / "validation.csv")
    right = [a for a in figure.axes if a is not axis]
    assert len(right) == 1 and right[0].get_ylabel() == "held-out warp_iou"
    assert list(right[0].lines[0].get_ydata()) == [0.5, 0.6]
    plt.close(figure)


def test_each_held_out_score_a_parser_logs_gets_an_axis_of_its_own(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tryon.train.curves import _plot_validation

    (tmp_path / "validation.csv").write_text(
        "step,seconds,keypoint_error,parse_miou\n0,0.0,4.3,0.90\n2,0.2,3.5,0.91\n"
    )
    figure, axis = plt.subplots()
    _plot_validation(axis, tmp_path / "validation.csv")
    right = {a.get_ylabel(): a for a in figure.axes if a is not axis}
    assert set(right) == {"held-out keypoint_error", "held-out parse_miou"}
    assert list(right["held-out keypoint_error"].lines[0].get_ydata()) == [4.3, 3.5]
    assert list(right["held-out parse_miou"].lines[0].get_ydata()) == [0.90, 0.91]
    plt.close(figure)


def test_the_parsers_validation_logs_how_far_its_keypoints_are_from_the_true_ones(
    tmp_path, datasets
):
    """`keypoint_error` is the mean distance in pixels over the visible true keypoints: 0
    for heatmaps peaked on them, 3 for heatmaps peaked 3 pixels to the right."""
    _, held_out = datasets
    validator = _validator(held_out, tmp_path / "run")
    trainer = ParserTrainer(lr=1e-3, device=CPU, parser=HumanParser(input_scale=1.0))

    def predict_shifted(shift: float):
        def predict(person):
            batch = next(b for b in validator.batches if b["person"] is person)
            points = batch["keypoints"].clone()
            points[..., 0] += shift
            heatmaps = keypoint_heatmaps(points, *SIZE).clamp(1e-4, 1 - 1e-4)
            parse = torch.nn.functional.one_hot(batch["parse"], 20).permute(0, 3, 1, 2)
            return parse.float(), torch.logit(heatmaps)

        return predict

    trainer.predict = predict_shifted(0.0)
    validator(trainer, 0, 0.0, CPU)
    trainer.predict = predict_shifted(3.0)
    validator(trainer, 1, 0.0, CPU)
    logged = read_losses(tmp_path / "run" / "validation.csv")
    assert logged["parse_miou"] == pytest.approx([1.0, 1.0])
    assert logged["keypoint_error"] == pytest.approx([0.0, 3.0], abs=0.05)


def test_the_toms_validation_also_logs_the_scores_that_see_texture(datasets, tmp_path):
    _, held_out = datasets
    torch.manual_seed(0)
    trainer = _tiny_tom_trainer()
    for net in trainer.networks.values():
        net.eval()
    with torch.no_grad():
        scores = trainer.validate(_validator(held_out, tmp_path).batches)
    assert {"painted_ssim", "region_sharpness", "region_gmsd"} <= set(scores)
    # An untrained TOM paints a smooth blur: far less texture than the photos have.
    assert 0.0 <= scores["region_sharpness"] < 0.9
    assert 0.0 < scores["region_gmsd"] < 1.0
