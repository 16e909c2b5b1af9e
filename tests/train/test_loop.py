"""The training loop: loss goes down, checkpoints, resume, logs and sample grids."""

from __future__ import annotations

import pytest
import torch
from tiny_trainers import tiny_gmm_trainer
from typer.testing import CliRunner

from tryon.cli import app
from tryon.data.synth.writer import write_dataset
from tryon.data.viton import VitonDataset
from tryon.errors import InvalidInputError
from tryon.train.loop import TrainConfig, cosine_lr, read_losses, run_training


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    write_dataset(root, n=4, seed=21)
    return root, VitonDataset(root, size=(128, 96))


def _trainer():
    return tiny_gmm_trainer(lr=1e-3)


def _config(root, out, **settings) -> TrainConfig:
    """A run on the tiny dataset: batches of 2 at 128x96, loaded in this process."""
    return TrainConfig(data=root, out=out, batch=2, size=(128, 96), workers=0, **settings)


def test_run_writes_checkpoints_logs_samples_and_resumes(tmp_path, dataset):
    root, data = dataset
    config = _config(
        root, tmp_path / "run", steps=4, log_every=2, checkpoint_every=2, sample_every=2
    )
    run_training(_trainer(), data, config, torch.device("cpu"))
    assert (tmp_path / "run" / "checkpoint.pt").exists()
    assert (tmp_path / "run" / "gmm" / "model.safetensors").exists()
    assert sorted(p.name for p in (tmp_path / "run" / "samples").iterdir()) == [
        "step_000002.png",
        "step_000004.png",
    ]
    assert read_losses(tmp_path / "run" / "losses.csv")["step"] == [2.0, 4.0]

    with pytest.raises(InvalidInputError, match="--resume"):
        run_training(_trainer(), data, config, torch.device("cpu"))
    config.resume, config.steps = True, 6
    run_training(_trainer(), data, config, torch.device("cpu"))
    assert read_losses(tmp_path / "run" / "losses.csv")["step"] == [2.0, 4.0, 6.0]


def test_a_time_budget_stops_the_run_and_saves_what_it_trained(tmp_path, dataset):
    root, data = dataset
    config = _config(
        root,
        tmp_path / "run",
        steps=1000,
        checkpoint_every=500,
        sample_every=500,
        max_minutes=1e-6,  # spent after the first step
    )
    run_training(_trainer(), data, config, torch.device("cpu"))
    assert read_losses(tmp_path / "run" / "losses.csv")["step"] == [1.0]
    assert (tmp_path / "run" / "gmm" / "model.safetensors").exists()
    assert [p.name for p in (tmp_path / "run" / "samples").iterdir()] == ["step_000001.png"]
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert state["step"] == 1 and state["seconds"] > 0

    # Resumed with a larger budget, it goes on where it stopped and counts the earlier time.
    config.resume, config.max_minutes, config.steps = True, 10.0, 3
    run_training(_trainer(), data, config, torch.device("cpu"))
    losses = read_losses(tmp_path / "run" / "losses.csv")
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
    ("component", "options", "expected_lr"),
    [("parser", [], 2e-3), ("gmm", [], 1e-4), ("gmm", ["--lr", "5e-4"], 5e-4)],
)
def test_each_network_trains_at_its_own_default_learning_rate(
    tmp_path, dataset, monkeypatch, component, options, expected_lr
):
    seen = {}

    def record(trainer, dataset, config, device, on_step, validator):  # noqa: ANN001, ANN202
        seen["config"] = config.lr
        seen["optimizer"] = trainer.optimizers[component].param_groups[0]["lr"]
        return tmp_path

    monkeypatch.setattr("tryon.train.loop.run_training", record)
    arguments = ["train", component, "--data", str(dataset[0]), "--out", str(tmp_path / "run")]
    result = CliRunner().invoke(app, [*arguments, "--size", "128x96", *options])
    assert result.exit_code == 0, result.output
    assert seen == {"config": expected_lr, "optimizer": expected_lr}


def test_a_resumed_run_keeps_the_precision_it_trained_in_unless_told_otherwise(
    tmp_path, dataset, monkeypatch
):
    root, data = dataset
    out = tmp_path / "run"
    trainer = tiny_gmm_trainer(lr=1e-3, precision=torch.bfloat16)
    run_training(
        trainer, data, _config(root, out, steps=2, precision="bfloat16"), torch.device("cpu")
    )
    seen = []

    def record(trainer, dataset, config, device, on_step, validator):  # noqa: ANN001, ANN202
        seen.append(config.precision)
        return config.out

    monkeypatch.setattr("tryon.train.loop.run_training", record)
    arguments = ["train", "gmm", "--data", str(root), "--size", "128x96", "--out"]
    resumed = CliRunner().invoke(app, [*arguments, str(out), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert "resuming in bfloat16" in resumed.output
    told = CliRunner().invoke(app, [*arguments, str(out), "--resume", "--precision", "float32"])
    assert told.exit_code == 0, told.output
    assert CliRunner().invoke(app, [*arguments, str(tmp_path / "new")]).exit_code == 0
    # A checkpoint written before checkpoints recorded their precision: float32, said so.
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    del state["precision"]
    torch.save(state, out / "checkpoint.pt")
    old = CliRunner().invoke(app, [*arguments, str(out), "--resume"])
    assert old.exit_code == 0, old.output
    assert "does not record its precision" in old.output and "--precision bfloat16" in old.output
    assert seen == ["bfloat16", "float32", "float32", "float32"]


def test_an_unknown_training_precision_is_refused_with_the_choices(tmp_path, dataset):
    arguments = ["train", "gmm", "--data", str(dataset[0]), "--out", str(tmp_path / "run")]
    result = CliRunner().invoke(app, [*arguments, "--size", "128x96", "--precision", "half"])
    assert isinstance(result.exception, InvalidInputError)
    assert "--precision 'half'" in str(result.exception) and "bfloat16" in str(result.exception)
    assert not (tmp_path / "run").exists()
