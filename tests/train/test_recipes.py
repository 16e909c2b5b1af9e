"""`tryon train parser|gmm|tom --config RECIPE`: the shipped recipes train what ships, the
resolved recipe is saved in the run and read back on --resume, and bad recipes are
refused naming the file and the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from recipes import REPOSITORY, TINY_NETWORKS, merged, tiny_recipe, train, write_recipe

from tryon.cli import main
from tryon.errors import InvalidInputError
from tryon.models import GeometricMatcher, HumanParser, TryOnGenerator
from tryon.representation import GMM_PERSON_CHANNELS
from tryon.train.config import FIXED_ARGUMENTS
from tryon.train.logs import read_losses

SHIPPED = sorted((REPOSITORY / "configs").glob("*/*.yaml"))
# What a shipped recipe needs to run a step on the tiny data in seconds.
TINY_SCHEDULE = {
    "data": {"pairs": "pairs.txt", "size": [128, 96]},
    "training": {"batch": 2, "workers": 0, "precision": "float32", "max_minutes": None},
    "validation": {"path": None},
}


def _refusal(component: str, *arguments) -> str:
    result = train(component, *arguments)
    assert isinstance(result.exception, InvalidInputError), result.output
    return str(result.exception)


def test_every_bundled_network_has_its_recipe():
    assert [f"{p.parent.name}/{p.stem}" for p in SHIPPED] == [
        f"{weights}/{network}"
        for weights in ("synthetic", "viton")
        for network in ("gmm", "parser", "tom")
    ]


@pytest.mark.parametrize("recipe", SHIPPED, ids=lambda p: f"{p.parent.name}-{p.stem}")
def test_a_shipped_recipe_trains_the_shipped_architecture(
    tmp_path, train_data, monkeypatch, recipe
):
    monkeypatch.chdir(tmp_path)  # the recipes name the bundled weights, found from anywhere
    component = recipe.stem
    values = merged(yaml.safe_load(recipe.read_text()), TINY_SCHEDULE)
    tiny = write_recipe(tmp_path / "tiny.yaml", values)
    out = tmp_path / "run"
    result = train(component, "--config", tiny, "--data", train_data, "--out", out, "--steps", 2)
    assert result.exit_code == 0, result.output

    bundled = REPOSITORY / "tryon" / "weights" / recipe.parent.name / component
    assert json.loads((out / component / "config.json").read_text()) == json.loads(
        (bundled / "config.json").read_text()
    )
    assert read_losses(out / "losses.csv")["step"] == [2.0]
    resolved = yaml.safe_load((out / "config.yaml").read_text())
    shipped = yaml.safe_load(recipe.read_text())
    assert resolved["network"] == shipped["network"]
    assert resolved["losses"] == shipped["losses"]
    assert resolved["training"]["steps"] == 2  # the command line's override
    if shipped["losses"].get("tune_gmm") is not None:  # the GMM is fine-tuned beside the TOM
        assert (out / "gmm" / "config.json").exists()


def test_the_resolved_recipe_names_every_setting_and_a_resumed_run_reads_it_back(
    tmp_path, train_data
):
    out = tmp_path / "run"
    recipe = tiny_recipe(tmp_path / "r.yaml", "gmm", losses={"grid_weight": 0.3})
    result = train("gmm", "--config", recipe, "--data", train_data, "--out", out)
    assert result.exit_code == 0, result.output
    resolved = yaml.safe_load((out / "config.yaml").read_text())
    assert resolved["trains"] == "gmm"
    expected = GeometricMatcher(**TINY_NETWORKS["gmm"]).config
    del expected["person_channels"]  # the person representation's, not the recipe's
    assert resolved["network"] == expected
    assert resolved["losses"] == {"grid_weight": 0.3}
    assert resolved["data"]["path"] == str(train_data)
    assert set(resolved["training"]) >= {"steps", "batch", "lr", "seed", "precision", "device"}

    # Resumed from its own recipe alone: the data and the losses come from config.yaml.
    result = train("gmm", "--out", out, "--resume", "--steps", 3)
    assert result.exit_code == 0, result.output
    assert "resuming" in result.output
    assert read_losses(out / "losses.csv")["step"] == [1.0, 3.0]
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["loss_settings"]["grid_weight"] == 0.3
    assert yaml.safe_load((out / "config.yaml").read_text())["training"]["steps"] == 3


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"losses": {"grid_weight": 0.5}}, "losses.grid_weight"),
        ({"network": {"refinement_stages": 1}}, "network.refinement_stages"),
    ],
)
def test_a_resumed_run_refuses_a_recipe_that_changes_its_network_or_losses(
    tmp_path, train_data, change, key
):
    out = tmp_path / "run"
    recipe = tiny_recipe(tmp_path / "r.yaml", "gmm")
    assert train("gmm", "--config", recipe, "--data", train_data, "--out", out).exit_code == 0
    saved = (out / "config.yaml").read_text()

    changed = tiny_recipe(tmp_path / "changed.yaml", "gmm", **change)
    message = _refusal("gmm", "--config", changed, "--out", out, "--resume", "--steps", 2)
    assert key in message and "resume it without --config" in message
    assert (out / "config.yaml").read_text() == saved  # nothing touched
    # The schedule may change: more steps from the same recipe.
    result = train("gmm", "--config", recipe, "--out", out, "--resume", "--steps", 2)
    assert result.exit_code == 0, result.output


def test_a_run_folder_holding_a_run_is_not_overwritten_without_resume(tmp_path, train_data):
    out = tmp_path / "run"
    recipe = tiny_recipe(tmp_path / "r.yaml", "gmm")
    assert train("gmm", "--config", recipe, "--data", train_data, "--out", out).exit_code == 0
    saved = (out / "config.yaml").read_text()
    other = tiny_recipe(tmp_path / "o.yaml", "gmm", losses={"grid_weight": 0.5})
    message = _refusal("gmm", "--config", other, "--data", train_data, "--out", out)
    assert "pass --resume" in message
    assert (out / "config.yaml").read_text() == saved


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"trainng": {"steps": 3}}, "unknown key trainng in {file}; valid keys in the recipe: "),
        (
            {"training": {"stpes": 3}},
            "unknown key training.stpes in {file}; valid keys in training",
        ),
        ({"network": {"flow_stages": 2}}, "unknown key network.flow_stages in {file}"),
        ({"network": {"person_channels": 3}}, "unknown key network.person_channels"),
        ({"training": {"steps": "many"}}, "training.steps in {file} must be an integer"),
        ({"losses": {"grid_weight": True}}, "losses.grid_weight in {file} must be a number"),
        ({"network": {"flow_stage": 1}}, "network.flow_stage in {file} must be like its default"),
        ({"losses": {"grid_weight": -1}}, "losses.grid_weight -1.0 in {file}: give 0 or more"),
        ({"training": {"precision": "half"}}, "choose one of auto, float32, bfloat16"),
        ({"trains": "tom"}, "{file} is a recipe for the tom: train it with `tryon train tom`"),
    ],
)
def test_a_bad_recipe_is_refused_naming_the_file_and_the_key(
    tmp_path, train_data, values, expected
):
    recipe = write_recipe(tmp_path / "bad.yaml", {"trains": "gmm", **values})
    message = _refusal("gmm", "--config", recipe, "--data", train_data, "--out", tmp_path / "run")
    assert expected.format(file=recipe) in message
    assert not (tmp_path / "run").exists()


def test_a_bad_recipe_is_a_product_error_and_a_bad_flag_a_usage_error(tmp_path, train_data, capsys):
    recipe = write_recipe(tmp_path / "bad.yaml", {"trainng": {"steps": 3}})
    arguments = ["train", "gmm", "--data", str(train_data), "--out", str(tmp_path / "run")]
    with pytest.raises(SystemExit) as exit_:
        main([*arguments, "--config", str(recipe)])
    assert exit_.value.code == 1
    printed = " ".join(capsys.readouterr().err.split())  # as one line, however it wraps
    assert "valid keys in the recipe: trains, init, network, parsed_by" in printed
    with pytest.raises(SystemExit) as exit_:
        main([*arguments, "--steps", "0"])
    assert exit_.value.code == 2
    with pytest.raises(SystemExit) as exit_:
        main([*arguments, "--config", str(tmp_path / "missing.yaml")])
    assert exit_.value.code == 1
    assert "cannot read the recipe" in " ".join(capsys.readouterr().err.split())


def test_training_the_tom_needs_a_trained_gmm(tmp_path, train_data):
    recipe = tiny_recipe(tmp_path / "r.yaml", "tom")
    message = _refusal("tom", "--config", recipe, "--data", train_data, "--out", tmp_path / "run")
    assert "pass --gmm RUN/gmm" in message


def _trained(folder: Path, network) -> Path:
    torch.manual_seed(0)
    return network.save_pretrained(folder)


@pytest.mark.parametrize(
    ("component", "start", "grown", "check"),
    [
        (
            "gmm",
            {"refinement_stages": 0, "flow_stage": False},
            {"refinement_stages": 1, "flow_stage": True},
            lambda gmm: len(gmm.refiners) == 1 and gmm.flow is not None,
        ),
        (
            "tom",
            {"residual_blocks": 1, "background": False},
            {"residual_blocks": 2, "background": True},
            lambda tom: len(tom.unet.bottleneck) == 2 and tom.background_head is not None,
        ),
        (
            "parser",
            {"input_scale": 0.5, "refiner_channels": 0},
            {"input_scale": 1.0, "refiner_channels": 8},
            lambda parser: parser.input_scale == 1.0 and parser.refiner is not None,
        ),
    ],
)
def test_the_recipes_network_grows_the_init_network_and_a_resumed_run_keeps_it(
    tmp_path, train_data, component, start, grown, check
):
    cls = {"parser": HumanParser, "gmm": GeometricMatcher, "tom": TryOnGenerator}[component]
    fixed = FIXED_ARGUMENTS[component]
    init = _trained(tmp_path / "init", cls(**fixed, **TINY_NETWORKS[component] | start))
    extra = {}
    if component == "tom":
        gmm = GeometricMatcher(person_channels=GMM_PERSON_CHANNELS, **TINY_NETWORKS["gmm"])
        extra["gmm"] = str(_trained(tmp_path / "gmm", gmm))
    out = tmp_path / "run"
    recipe = tiny_recipe(tmp_path / "r.yaml", component, init=str(init), **extra)
    recipe_values = yaml.safe_load(recipe.read_text())
    recipe_values["network"] = grown  # only the parts that grow; the rest is init's
    write_recipe(recipe, recipe_values)
    result = train(component, "--config", recipe, "--data", train_data, "--out", out)
    assert result.exit_code == 0, result.output
    assert check(cls.from_pretrained(out / component))
    # The resolved recipe names the whole grown network: the grown parts, the rest init's.
    resolved = yaml.safe_load((out / "config.yaml").read_text())["network"]
    expected = cls.from_pretrained(init).config | grown
    assert resolved == {key: value for key, value in expected.items() if key not in fixed}
    result = train(component, "--out", out, "--resume", "--steps", 2)
    assert result.exit_code == 0, result.output
    assert check(cls.from_pretrained(out / component))

    # Trained parts are never dropped: the grown network cannot start a smaller one.
    shrink = tiny_recipe(tmp_path / "s.yaml", component, init=str(out / component), **extra)
    values = yaml.safe_load(shrink.read_text())
    values["network"] = start
    write_recipe(shrink, values)
    message = _refusal(component, "--config", shrink, "--data", train_data, "--out", tmp_path / "s")
    assert f"--init {out / component} has network." in message


def test_a_network_key_that_cannot_grow_from_init_is_refused(tmp_path, train_data):
    gmm = GeometricMatcher(person_channels=GMM_PERSON_CHANNELS, **TINY_NETWORKS["gmm"])
    init = _trained(tmp_path / "init", gmm)
    recipe = tiny_recipe(tmp_path / "r.yaml", "gmm", init=str(init))
    values = yaml.safe_load(recipe.read_text())
    values["network"] = {"regressor_width": 32}
    write_recipe(recipe, values)
    message = _refusal("gmm", "--config", recipe, "--data", train_data, "--out", tmp_path / "run")
    assert "network.regressor_width 16, the recipe asks for 32" in message
    assert "leave network.regressor_width out" in message


def test_init_on_the_command_line_starts_from_those_weights(tmp_path, train_data, monkeypatch):
    seen = {}

    def record(trainer, dataset, schedule, out, device, **_):  # noqa: ANN001, ANN202
        seen["gmm"] = trainer.gmm
        return out

    monkeypatch.setattr("tryon.train.loop.run_training", record)
    gmm = GeometricMatcher(person_channels=GMM_PERSON_CHANNELS, **TINY_NETWORKS["gmm"])
    init = _trained(tmp_path / "init", gmm)
    recipe = tiny_recipe(tmp_path / "r.yaml", "gmm", network={})
    arguments = ["--config", recipe, "--data", train_data, "--out", tmp_path / "run"]
    assert train("gmm", *arguments, "--init", init).exit_code == 0
    trained = GeometricMatcher.from_pretrained(init)
    for before, after in zip(trained.parameters(), seen["gmm"].parameters(), strict=True):
        assert torch.equal(before, after)


def test_a_network_source_that_is_neither_a_folder_nor_bundled_weights_is_named(
    tmp_path, train_data, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    recipe = write_recipe(tmp_path / "r.yaml", merged({"init": "no-such-weights"}, TINY_SCHEDULE))
    result = train("parser", "--config", recipe, "--data", train_data, "--out", tmp_path / "run")
    assert result.exit_code != 0
    message = " ".join(str(result.exception).split())
    assert "no-such-weights" in message and "bundled weights name such as synthetic" in message
