"""The training loop: loss goes down, checkpoints, resume, logs and sample grids."""

from __future__ import annotations

import pytest
import torch
import yaml
from recipes import tiny_recipe, train
from tiny_trainers import tiny_gmm_trainer

from tryon.data.synth.writer import write_dataset
from tryon.data.viton import VitonDataset
from tryon.errors import InvalidInputError
from tryon.train.config import Schedule
from tryon.train.logs import read_losses
from tryon.train.loop import cosine_lr, run_training

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    write_dataset(root, n=4, seed=21)
    return root, VitonDataset(root, size=(128, 96))


def _trainer():
    return tiny_gmm_trainer(lr=1e-3)


def _schedule(**settings) -> Schedule:
    """Batches of 2, loaded in this process."""
    return Schedule(batch=2, workers=0, **settings)


def test_run_writes_checkpoints_logs_samples_and_resumes(tmp_path, dataset):
    _, data = dataset
    out = tmp_path / "run"
    schedule = _schedule(steps=4, log_every=2, checkpoint_every=2, sample_every=2)
    run_training(_trainer(), data, schedule, out, CPU)
    assert (out / "checkpoint.pt").exists()
    assert (out / "gmm" / "model.safetensors").exists()
    assert sorted(p.name for p in (out / "samples").iterdir()) == [
        "step_000002.png",
        "step_000004.png",
    ]
    assert read_losses(out / "losses.csv")["step"] == [2.0, 4.0]

    with pytest.raises(InvalidInputError, match="--resume"):
        run_training(_trainer(), data, schedule, out, CPU)
    schedule.steps = 6
    run_training(_trainer(), data, schedule, out, CPU, resume=True)
    assert read_losses(out / "losses.csv")["step"] == [2.0, 4.0, 6.0]


def test_a_time_budget_stops_the_run_and_saves_what_it_trained(tmp_path, dataset):
    _, data = dataset
    out = tmp_path / "run"
    schedule = _schedule(
        steps=1000,
        checkpoint_every=500,
        sample_every=500,
        max_minutes=1e-6,  # spent after the first step
    )
    run_training(_trainer(), data, schedule, out, CPU)
    assert read_losses(out / "losses.csv")["step"] == [1.0]
    assert (out / "gmm" / "model.safetensors").exists()
    assert [p.name for p in (out / "samples").iterdir()] == ["step_000001.png"]
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["step"] == 1 and state["seconds"] > 0

    # Resumed with a larger budget, it goes on where it stopped and counts the earlier time.
    schedule.max_minutes, schedule.steps = 10.0, 3
    run_training(_trainer(), data, schedule, out, CPU, resume=True)
    losses = read_losses(out / "losses.csv")
    assert losses["step"] == [1.0, 3.0]
    assert losses["seconds"][1] >= losses["seconds"][0]


def test_learning_rate_decays_over_the_budget_that_ends_first():
    assert cosine_lr(1.0, 50, 1000) == pytest.approx(0.51)  # warm-up
    assert cosine_lr(1.0, 100, 1000) == pytest.approx(1.0)
    assert cosine_lr(1.0, 1000, 1000) == pytest.approx(0.05)
    # Half the time budget spent after a tenth of the steps: the decay is half way.
    assert cosine_lr(1.0, 190, 1000, spent=0.5) == pytest.approx(0.525)
    assert cosine_lr(1.0, 550, 1000, spent=0.1) == pytest.approx(0.525)
    assert cosine_lr(1.0, 200, 1000, spent=1.5) == pytest.approx(0.05)


@pytest.mark.parametrize("precision", [torch.float32, torch.bfloat16])
def test_training_lowers_the_loss_on_a_fixed_batch(dataset, precision):
    _, data = dataset
    trainer = tiny_gmm_trainer(lr=1e-3, precision=precision)
    batch = {
        k: torch.stack([data[i][k] for i in range(2)])
        for k in data[0]
        if torch.is_tensor(data[0][k])
    }
    losses = [trainer.train_step(batch, step)["loss"] for step in range(25)]
    assert losses[-1] < 0.8 * losses[0]


@pytest.mark.parametrize(
    ("component", "recipe_lr", "expected_lr"),
    [("parser", None, 2e-3), ("gmm", None, 1e-4), ("gmm", 5e-4, 5e-4)],
)
def test_each_network_trains_at_its_own_default_learning_rate(
    tmp_path, dataset, monkeypatch, component, recipe_lr, expected_lr
):
    seen = {}

    def record(trainer, dataset, schedule, out, device, **_):  # noqa: ANN001, ANN202
        seen["schedule"] = schedule.lr
        seen["optimizer"] = trainer.optimizers[component].param_groups[0]["lr"]
        return out

    monkeypatch.setattr("tryon.train.loop.run_training", record)
    training = {} if recipe_lr is None else {"lr": recipe_lr}
    recipe = tiny_recipe(tmp_path / "r.yaml", component, training=training)
    result = train(component, "--config", recipe, "--data", dataset[0], "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output
    assert seen == {"schedule": expected_lr, "optimizer": expected_lr}


def test_a_resumed_run_keeps_the_precision_it_trained_in_unless_told_otherwise(
    tmp_path, dataset, monkeypatch
):
    root, _ = dataset
    out = tmp_path / "run"
    recipe = tiny_recipe(tmp_path / "r.yaml", "gmm", training={"precision": "bfloat16"})
    started = train("gmm", "--config", recipe, "--data", root, "--out", out)
    assert started.exit_code == 0, started.output
    seen = []

    def record(trainer, dataset, schedule, out, device, **_):  # noqa: ANN001, ANN202
        seen.append(schedule.precision)
        return out

    monkeypatch.setattr("tryon.train.loop.run_training", record)
    assert train("gmm", "--out", out, "--resume", "--steps", "2").exit_code == 0
    told = train("gmm", "--out", out, "--resume", "--precision", "float32")
    assert told.exit_code == 0, told.output
    assert seen == ["bfloat16", "float32"]
    # The resolved recipe in the run folder says what the run trains in now.
    assert yaml.safe_load((out / "config.yaml").read_text())["training"]["precision"] == "float32"


def test_an_unknown_training_precision_is_a_usage_error_naming_the_choices(tmp_path, dataset):
    result = train("gmm", "--data", dataset[0], "--out", tmp_path / "run", "--precision", "half")
    assert result.exit_code == 2
    assert "bfloat16" in result.output
    assert not (tmp_path / "run").exists()
