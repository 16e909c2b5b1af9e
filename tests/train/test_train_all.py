"""`tryon train all`: parser, GMM and TOM in one resumable run under one time budget."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from recipes import tiny_recipe
from typer.testing import CliRunner

from tryon.cli import app
from tryon.data.synth.writer import write_dataset
from tryon.errors import InvalidInputError
from tryon.train.chain import ChainRequest, chained_references, train_all

MINUTES = 10.0  # far more than two steps each take: every network ends on its steps


class Killed(Exception):
    """Stands for the run being killed."""


@pytest.fixture(scope="module")
def recipes(tmp_path_factory):
    """Tiny recipes of two steps that name bundled weights as configs/viton's do."""
    folder = tmp_path_factory.mktemp("recipes")
    tiny_recipe(folder / "parser.yaml", "parser", training={"steps": 2})
    tiny_recipe(folder / "gmm.yaml", "gmm", parsed_by="viton", training={"steps": 2})
    no_gan = {"adversarial_weight": 0.0, "feature_weight": 0.0, "tune_gmm": 0.25}
    tiny_recipe(
        folder / "tom.yaml",
        "tom",
        gmm="viton",
        parsed_by="viton",
        losses=no_gan,
        training={"steps": 2},
    )
    return folder


@pytest.fixture(scope="module")
def val_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("held_out")
    write_dataset(root, n=2, seed=43)
    return root


@pytest.fixture(scope="module")
def chained_run(recipes, train_data, val_data, tmp_path_factory):
    """A run killed during the GMM's second step, then resumed from the command line."""
    out = tmp_path_factory.mktemp("chain") / "run"
    request = ChainRequest(
        recipes=recipes,
        data=train_data,
        out=out,
        max_minutes=MINUTES,
        device="cpu",
        val_data=val_data,
    )

    def kill_gmm(network: str, step: int, losses: dict[str, float]) -> None:
        if network == "gmm" and step == 2:
            raise Killed

    with pytest.raises(Killed):
        train_all(request, on_step=kill_gmm)
    parser_checkpoint = (out / "parser" / "checkpoint.pt").read_bytes()
    state_after_kill = json.loads((out / "chain.json").read_text())
    state_after_kill["gmm_step"] = torch.load(out / "gmm" / "checkpoint.pt")["step"]
    arguments = ["train", "all", "--recipes", recipes, "--data", train_data, "--out", out]
    arguments += ["--val-data", val_data, "--max-minutes", MINUTES, "--device", "cpu"]
    refused = CliRunner().invoke(app, list(map(str, arguments)))
    resumed = CliRunner().invoke(app, list(map(str, [*arguments, "--resume"])))
    return out, parser_checkpoint, state_after_kill, refused, resumed


def saved_recipe(out, network):
    return yaml.safe_load((out / network / "config.yaml").read_text())


def test_a_killed_run_resumes_where_it_stopped(chained_run):
    out, parser_checkpoint, state_after_kill, refused, resumed = chained_run

    assert list(state_after_kill["done"]) == ["parser"]
    assert isinstance(refused.exception, InvalidInputError)
    assert "--resume" in str(refused.exception)
    assert resumed.exit_code == 0, resumed.output
    assert "parser: finished earlier, kept" in resumed.output
    # The parser is not trained again; the GMM goes on from its step-1 checkpoint.
    assert (out / "parser" / "checkpoint.pt").read_bytes() == parser_checkpoint
    assert state_after_kill["gmm_step"] == 1
    assert f"resuming {out / 'gmm'}" in " ".join(resumed.output.split())
    for network in ("gmm", "tom"):
        state = torch.load(out / network / "checkpoint.pt", weights_only=True)
        assert state["step"] == 2


def test_each_network_learns_from_the_ones_trained_before_it(chained_run):
    out = chained_run[0]

    assert saved_recipe(out, "gmm")["parsed_by"] == str(out / "parser" / "best" / "parser")
    tom = saved_recipe(out, "tom")
    assert tom["gmm"] == str(out / "gmm" / "best" / "gmm")
    assert tom["parsed_by"] == str(out / "parser" / "best" / "parser")
    assert (out / "curves.png").stat().st_size > 0
    resumed = chained_run[4]
    # The TOM tuned the GMM beside it: that GMM is the one to pack.
    assert f"--gmm {out / 'tom' / 'best' / 'gmm'}" in " ".join(resumed.output.split())


def test_the_time_budget_is_shared_and_time_left_over_passes_on(chained_run):
    out = chained_run[0]
    budgets = {n: saved_recipe(out, n)["training"]["max_minutes"] for n in ("parser", "gmm", "tom")}

    assert 0.25 * MINUTES < budgets["parser"] <= 0.3 * MINUTES
    # The parser and GMM ended on their steps in seconds: the TOM gets their time.
    assert budgets["tom"] > 0.9 * MINUTES
    done = json.loads((out / "chain.json").read_text())["done"]
    assert set(done) == {"parser", "gmm", "tom"}
    assert sum(done.values()) < 60 * MINUTES


def test_only_references_to_bundled_weights_are_replaced(tmp_path, recipes):
    folder = tmp_path / "my_parser"
    folder.mkdir()
    out = tmp_path / "run"

    assert chained_references("gmm", recipes / "gmm.yaml", out) == {
        "parsed_by": out / "parser" / "parser"  # not validated: its last step
    }
    tiny_recipe(tmp_path / "tom.yaml", "tom", gmm="viton", parsed_by=str(folder))
    assert chained_references("tom", tmp_path / "tom.yaml", out) == {"gmm": out / "gmm" / "gmm"}
    tiny_recipe(tmp_path / "gmm.yaml", "gmm")  # parsed_by null: the dataset's own parse
    assert chained_references("gmm", tmp_path / "gmm.yaml", out) == {}


def test_a_recipes_folder_without_the_three_recipes_is_refused(tmp_path, train_data):
    tiny_recipe(tmp_path / "parser.yaml", "parser")
    request = ChainRequest(recipes=tmp_path, data=train_data, out=tmp_path / "run", max_minutes=1)

    with pytest.raises(InvalidInputError, match="lacks gmm.yaml, tom.yaml"):
        train_all(request)
