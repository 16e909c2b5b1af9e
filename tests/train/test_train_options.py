"""`tryon train` options of one network: `--input-scale`, `--parse-refiner`, `--dice-weight`
and `--balance-labels` (parser), `--grid-weight`, `--refinement-stages` and `--flow-stage` (GMM),
`--adversarial-weight`, `--feature-weight`, `--ssim-weight`, `--residual-blocks` and
`--tune-gmm` (TOM); each reaches its network and only it, and changes what training does."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tiny_trainers import tiny_gmm_trainer, tiny_tom_trainer
from typer.testing import CliRunner

from tryon.cli import app
from tryon.data.viton import VitonDataset
from tryon.errors import InvalidInputError
from tryon.models import GeometricMatcher, HumanParser, TryOnGenerator
from tryon.models.gmm import GRID_WEIGHT, grid_regularisation
from tryon.representation import GMM_PERSON_CHANNELS, TOM_PERSON_CHANNELS, build_representation
from tryon.train.components import HEAD_LR_FACTOR, region_ssim_loss
from tryon.train.loop import collate_tensors

SIZE = (128, 96)


def _record_trainer(monkeypatch, attribute: str) -> dict:
    """Stop `tryon train` before it trains and keep the trainer's `attribute`."""
    seen = {}

    def record(trainer, dataset, config, device, on_step, validator):  # noqa: ANN001, ANN202
        seen["value"] = getattr(trainer, attribute)
        return config.out

    monkeypatch.setattr("tryon.train.loop.run_training", record)
    return seen


def _tiny_run(component: str, train: Path, out: Path) -> list[str]:
    """`tryon train COMPONENT` arguments for a tiny run into `out` that checkpoints every step."""
    return [
        *("train", component, "--data", str(train), "--out", str(out), "--size", "128x96"),
        *("--batch", "2", "--workers", "0", "--checkpoint-every", "1"),
    ]


def _assert_refused(arguments: list[str], message: str) -> None:
    """`tryon ARGUMENTS` stops with an InvalidInputError saying `message`."""
    result = CliRunner().invoke(app, arguments)
    assert isinstance(result.exception, InvalidInputError)
    assert message in str(result.exception)


def _bending_after_training(train, grid_weight: float) -> float:
    """Grid regulariser of the warps of a tiny GMM after 15 steps with `grid_weight`."""
    trainer = tiny_gmm_trainer(lr=3e-3, grid_weight=grid_weight)
    gmm = trainer.gmm
    data = VitonDataset(train, size=SIZE)
    batch = collate_tensors([data[i] for i in range(len(data))])
    for step in range(15):
        trainer.train_step(batch, step)
    gmm.eval()
    with torch.no_grad():
        rep = build_representation(batch["person"], batch["parse"], batch["keypoints"])
        output = gmm(rep.gmm_input(), batch["cloth"], batch["cloth_mask"])
    return grid_regularisation(output.source_points).item()


def test_a_higher_grid_weight_keeps_the_learnt_warp_closer_to_affine(train):
    assert _bending_after_training(train, 10.0) < 0.5 * _bending_after_training(train, 0.0)


def test_the_grid_weight_reaches_the_gmm_and_only_the_gmm(tmp_path, train, monkeypatch):
    seen = _record_trainer(monkeypatch, "grid_weight")
    arguments = ["train", "gmm", "--data", str(train), "--out", str(tmp_path / "run")]
    assert CliRunner().invoke(app, [*arguments, "--grid-weight", "0.3"]).exit_code == 0
    assert seen["value"] == 0.3
    assert CliRunner().invoke(app, arguments).exit_code == 0
    assert seen["value"] == GRID_WEIGHT

    _assert_refused([*arguments, "--grid-weight", "-1"], "give 0 or more")
    arguments[1] = "parser"
    _assert_refused([*arguments, "--grid-weight", "0.3"], "use it with gmm")


@pytest.mark.parametrize(
    ("option", "default"),
    [
        ("--adversarial-weight", 0.1),
        ("--feature-weight", 1.0),
        ("--ssim-weight", 1.0),
        ("--tune-gmm", None),
    ],
)
def test_tom_loss_weights_reach_the_tom_and_only_the_tom(
    tmp_path, train, monkeypatch, option, default
):
    seen = _record_trainer(monkeypatch, "loss_settings")
    setting = option.removeprefix("--").replace("-", "_")
    GeometricMatcher(person_channels=GMM_PERSON_CHANNELS).save_pretrained(tmp_path / "gmm")
    arguments = ["train", "tom", "--data", str(train), "--out", str(tmp_path / "run")]
    tom = [*arguments, "--gmm", str(tmp_path / "gmm"), "--size", "128x96"]
    assert CliRunner().invoke(app, [*tom, option, "0.01"]).exit_code == 0
    assert seen["value"][setting] == 0.01
    assert CliRunner().invoke(app, tom).exit_code == 0
    assert seen["value"][setting] == default  # the TOM trainer's own default

    _assert_refused([*tom, option, "-0.5"], "give 0 or more")
    arguments[1] = "gmm"
    _assert_refused([*arguments, option, "0.1"], "use it with tom")


def test_without_gan_weights_the_tom_trains_alone(train):
    data = VitonDataset(train, size=SIZE)
    batch = collate_tensors([data[i] for i in range(2)])
    for weights, discriminator_learns in (
        ({}, True),
        ({"adversarial_weight": 0, "feature_weight": 0}, False),
    ):
        trainer = tiny_tom_trainer(lr=1e-3, **weights)
        before = [p.clone() for p in trainer.discriminator.parameters()]
        tom_before = [p.clone() for p in trainer.tom.parameters()]
        losses = trainer.train_step(batch, 0)
        after = trainer.discriminator.parameters()
        moved = any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
        assert moved == discriminator_learns
        assert ("d" in losses) == discriminator_learns
        assert any(
            not torch.equal(a, b) for a, b in zip(tom_before, trainer.tom.parameters(), strict=True)
        )


def test_the_tom_ssim_loss_looks_only_inside_the_try_on_region():
    """1 - SSIM over the region: 0 for the photo itself, and the same for a region painted
    alike whatever share of the image it covers (a whole-image mean would shrink it)."""
    torch.manual_seed(0)
    photo = torch.rand(1, 3, 64, 96) * 2 - 1
    painted = photo.clone()
    painted[..., 16:48, 16:48] = torch.rand(1, 3, 32, 32) * 2 - 1
    region = torch.zeros(1, 1, 64, 96)
    region[..., 16:48, 16:48] = 1
    small = region_ssim_loss(painted, photo, region)
    assert region_ssim_loss(photo, photo, region).item() == pytest.approx(0, abs=1e-4)
    assert small.item() > 0.5
    wide = torch.cat([painted, photo], dim=-1)
    wide_photo = torch.cat([photo, photo], dim=-1)
    wide_region = torch.cat([region, torch.zeros_like(region)], dim=-1)
    assert region_ssim_loss(wide, wide_photo, wide_region).item() == pytest.approx(
        small.item(), rel=0.02
    )


def test_refinement_stages_grow_the_init_gmm_and_only_the_gmm(tmp_path, train, monkeypatch):
    seen = _record_trainer(monkeypatch, "gmm")
    torch.manual_seed(0)
    trained = GeometricMatcher(person_channels=GMM_PERSON_CHANNELS, refinement_stages=1)
    trained.save_pretrained(tmp_path / "trained")
    arguments = ["train", "gmm", "--data", str(train), "--out", str(tmp_path / "run")]
    from_trained = [*arguments, "--init", str(tmp_path / "trained")]
    assert CliRunner().invoke(app, [*from_trained, "--refinement-stages", "2"]).exit_code == 0
    grown = seen["value"]
    assert len(grown.refiners) == 2
    first_conv = [gmm.refiners[0].features.layers[0][0].weight for gmm in (grown, trained)]
    assert torch.equal(*first_conv)  # the trained stage is kept, the second one added
    assert CliRunner().invoke(app, from_trained).exit_code == 0
    assert len(seen["value"].refiners) == 1  # what --init has
    assert CliRunner().invoke(app, [*arguments, "--refinement-stages", "1"]).exit_code == 0
    assert len(seen["value"].refiners) == 1

    _assert_refused([*from_trained, "--refinement-stages", "0"], "--refinement-stages 1 or more")
    _assert_refused([*arguments, "--refinement-stages", "-1"], "give 0 or more")
    arguments[1] = "parser"
    _assert_refused([*arguments, "--refinement-stages", "1"], "use it with gmm")


def test_residual_blocks_grow_the_init_tom_and_only_the_tom(tmp_path, train, monkeypatch):
    seen = _record_trainer(monkeypatch, "tom")
    torch.manual_seed(0)
    GeometricMatcher(person_channels=GMM_PERSON_CHANNELS).save_pretrained(tmp_path / "gmm")
    trained = TryOnGenerator(person_channels=TOM_PERSON_CHANNELS, residual_blocks=1)
    trained.save_pretrained(tmp_path / "trained")
    arguments = ["train", "tom", "--data", str(train), "--out", str(tmp_path / "run")]
    arguments += ["--gmm", str(tmp_path / "gmm")]
    from_trained = [*arguments, "--init", str(tmp_path / "trained")]
    assert CliRunner().invoke(app, [*from_trained, "--residual-blocks", "3"]).exit_code == 0
    grown = seen["value"]
    assert len(grown.unet.bottleneck) == 3
    kept = [tom.unet.bottleneck[0].layers[0][0].weight for tom in (grown, trained)]
    assert torch.equal(*kept)  # the trained block is kept, two more added
    assert CliRunner().invoke(app, from_trained).exit_code == 0
    assert len(seen["value"].unet.bottleneck) == 1  # what --init has
    assert CliRunner().invoke(app, [*arguments, "--residual-blocks", "2"]).exit_code == 0
    assert len(seen["value"].unet.bottleneck) == 2

    _assert_refused([*from_trained, "--residual-blocks", "0"], "--residual-blocks 1 or more")
    _assert_refused([*arguments, "--residual-blocks", "-1"], "give 0 or more")
    arguments[1] = "gmm"
    _assert_refused([*arguments, "--residual-blocks", "1"], "use it with tom")


@pytest.mark.parametrize(
    ("option", "setting", "head"),
    [
        ("--shading", "shading", "shading_head"),
        ("--show-background", "background", "background_head"),
    ],
)
def test_a_tom_head_grows_the_init_tom_and_a_resumed_run_keeps_what_it_has(
    tmp_path, train, option, setting, head
):
    torch.manual_seed(0)
    GeometricMatcher(person_channels=GMM_PERSON_CHANNELS).save_pretrained(tmp_path / "gmm")
    TryOnGenerator(person_channels=TOM_PERSON_CHANNELS).save_pretrained(tmp_path / "trained")
    out = tmp_path / "run"
    run = [*_tiny_run("tom", train, out), "--gmm", str(tmp_path / "gmm")]
    started = [*run, "--init", str(tmp_path / "trained"), option]
    result = CliRunner().invoke(app, [*started, "--steps", "1"])
    assert result.exit_code == 0, result.output
    assert TryOnGenerator.from_pretrained(out / "tom").config[setting] is True
    result = CliRunner().invoke(app, [*run, "--resume", "--steps", "2"])
    assert result.exit_code == 0, result.output
    assert getattr(TryOnGenerator.from_pretrained(out / "tom"), head) is not None

    plain = tmp_path / "plain"
    run = [*_tiny_run("tom", train, plain), "--gmm", str(tmp_path / "gmm")]
    result = CliRunner().invoke(app, [*run, "--steps", "1"])
    assert result.exit_code == 0, result.output
    _assert_refused([*run, "--resume", "--steps", "2", option], f"resume it without {option}")
    _assert_refused([*_tiny_run("gmm", train, tmp_path / "g"), option], "use it with tom")


def test_the_background_head_learns_where_the_dataset_shows_background(train):
    data = VitonDataset(train, size=SIZE)
    batch = collate_tensors([data[i] for i in range(2)])
    trainer = tiny_tom_trainer(lr=1e-4, background=True, adversarial_weight=0, feature_weight=0)
    body, heads = trainer.optimizers["tom"].param_groups  # the new head learns faster
    assert heads["lr"] == HEAD_LR_FACTOR * body["lr"] == HEAD_LR_FACTOR * 1e-4
    bias = trainer.tom.background_head.bias
    start = float(bias.detach())
    losses = [trainer.train_step(batch, step)["background"] for step in range(3)]
    assert float(bias.detach()) > start  # the dataset shows background in the region: it opens
    assert losses[-1] < losses[0]


def test_tune_gmm_trains_the_gmm_through_the_final_image_and_saves_it_beside_the_tom(train):
    data = VitonDataset(train, size=SIZE)
    batch = collate_tensors([data[i] for i in range(2)])
    weights = {"adversarial_weight": 0, "feature_weight": 0}
    for tune_gmm in (None, 0.0, 1.0):
        trainer = tiny_tom_trainer(lr=1e-3, tune_gmm=tune_gmm, **weights)
        before = [p.clone() for p in trainer.gmm.parameters()]
        losses = trainer.train_step(batch, 0)
        moved = any(
            not torch.equal(a, b) for a, b in zip(before, trainer.gmm.parameters(), strict=True)
        )
        # Even with no warp loss (0) the final image's losses reach the GMM.
        assert moved == (tune_gmm is not None)
        assert ("warp" in losses) == (tune_gmm is not None)


def test_a_tune_gmm_run_saves_both_networks_and_resumes_only_with_its_weight(tmp_path, train):
    GeometricMatcher(person_channels=GMM_PERSON_CHANNELS).save_pretrained(tmp_path / "gmm")
    out = tmp_path / "run"
    run = ["train", "tom", "--data", str(train), "--out", str(out), "--size", "128x96"]
    run += ["--batch", "2", "--workers", "0", "--checkpoint-every", "1"]
    run += ["--gmm", str(tmp_path / "gmm"), "--adversarial-weight", "0", "--feature-weight", "0"]
    result = CliRunner().invoke(app, [*run, "--steps", "2", "--tune-gmm", "1"])
    assert result.exit_code == 0, result.output
    tuned = GeometricMatcher.from_pretrained(out / "gmm").state_dict()
    start = GeometricMatcher.from_pretrained(tmp_path / "gmm").state_dict()
    assert any(not torch.equal(tuned[k], start[k]) for k in start)

    resumed = [*run, "--resume", "--steps", "3"]
    _assert_refused(resumed, "resume it with --tune-gmm 1")
    result = CliRunner().invoke(app, [*resumed, "--tune-gmm", "1"])
    assert result.exit_code == 0, result.output


def test_a_resumed_tom_run_keeps_its_residual_blocks(tmp_path, train):
    GeometricMatcher(person_channels=GMM_PERSON_CHANNELS).save_pretrained(tmp_path / "gmm")
    out = tmp_path / "run"
    run = ["train", "tom", "--data", str(train), "--out", str(out), "--size", "128x96"]
    run += ["--batch", "2", "--workers", "0", "--checkpoint-every", "1"]
    run += ["--gmm", str(tmp_path / "gmm")]
    result = CliRunner().invoke(app, [*run, "--steps", "1", "--residual-blocks", "2"])
    assert result.exit_code == 0, result.output

    resumed = [*run, "--resume", "--steps", "2"]
    _assert_refused([*resumed, "--residual-blocks", "1"], "resume it with --residual-blocks 2")
    result = CliRunner().invoke(app, resumed)
    assert result.exit_code == 0, result.output
    assert TryOnGenerator.from_pretrained(out / "tom").config["residual_blocks"] == 2


def test_flow_stage_grows_the_init_gmm_and_a_resumed_run_keeps_it(tmp_path, train):
    torch.manual_seed(0)
    GeometricMatcher(person_channels=GMM_PERSON_CHANNELS).save_pretrained(tmp_path / "trained")
    out = tmp_path / "run"
    run = _tiny_run("gmm", train, out)
    started = [*run, "--init", str(tmp_path / "trained"), "--flow-stage"]
    result = CliRunner().invoke(app, [*started, "--steps", "1"])
    assert result.exit_code == 0, result.output
    assert GeometricMatcher.from_pretrained(out / "gmm").config["flow_stage"] is True

    result = CliRunner().invoke(app, [*run, "--resume", "--steps", "2"])
    assert result.exit_code == 0, result.output
    assert GeometricMatcher.from_pretrained(out / "gmm").config["flow_stage"] is True

    run = _tiny_run("gmm", train, tmp_path / "plain")
    assert CliRunner().invoke(app, [*run, "--steps", "1"]).exit_code == 0
    _assert_refused([*run, "--resume", "--steps", "2", "--flow-stage"], "without --flow-stage")
    run[1] = "tom"
    _assert_refused([*run, "--flow-stage"], "use it with gmm")


def test_flow_corrections_grow_the_init_gmm_and_a_resumed_run_keeps_them(tmp_path, train):
    torch.manual_seed(0)
    GeometricMatcher(person_channels=GMM_PERSON_CHANNELS).save_pretrained(tmp_path / "trained")
    init = ["--init", str(tmp_path / "trained")]
    _assert_refused(
        [*_tiny_run("gmm", train, tmp_path / "r0"), *init, "--flow-corrections", "1"],
        "add --flow-stage",
    )
    out = tmp_path / "run"
    run = _tiny_run("gmm", train, out)
    started = [*run, *init, "--flow-stage", "--flow-corrections", "1"]
    result = CliRunner().invoke(app, [*started, "--steps", "1"])
    assert result.exit_code == 0, result.output
    assert GeometricMatcher.from_pretrained(out / "gmm").config["flow_corrections"] == 1

    _assert_refused(
        [*run, "--resume", "--steps", "2", "--flow-corrections", "2"],
        "resume it with --flow-corrections 1",
    )
    result = CliRunner().invoke(app, [*run, "--resume", "--steps", "2"])
    assert result.exit_code == 0, result.output
    assert GeometricMatcher.from_pretrained(out / "gmm").config["flow_corrections"] == 1

    grown = [*_tiny_run("gmm", train, tmp_path / "r2"), "--init", str(out / "gmm")]
    _assert_refused([*grown, "--flow-corrections", "0"], "give --flow-corrections 1 or more")
    run[1] = "tom"
    _assert_refused([*run, "--flow-corrections", "1"], "use it with gmm")


def test_a_resumed_gmm_run_keeps_its_stages_and_refuses_another_grid_weight(tmp_path, train):
    GeometricMatcher(person_channels=GMM_PERSON_CHANNELS).save_pretrained(tmp_path / "trained")
    out = tmp_path / "run"
    run = ["train", "gmm", "--data", str(train), "--out", str(out), "--size", "128x96"]
    run += ["--batch", "2", "--workers", "0", "--checkpoint-every", "1"]
    started = [*run, "--init", str(tmp_path / "trained"), "--refinement-stages", "1"]
    result = CliRunner().invoke(app, [*started, "--steps", "1", "--grid-weight", "0.3"])
    assert result.exit_code == 0, result.output

    resumed = [*run, "--resume", "--steps", "2"]
    _assert_refused([*resumed, "--grid-weight", "0.3", "--refinement-stages", "0"], "stage")
    _assert_refused(resumed, "resume it with --grid-weight 0.3")
    result = CliRunner().invoke(app, [*resumed, "--grid-weight", "0.3"])
    assert result.exit_code == 0, result.output
    assert GeometricMatcher.from_pretrained(out / "gmm").config["refinement_stages"] == 1


def test_input_scale_sets_the_parsers_resolution_and_a_resumed_run_keeps_it(
    tmp_path, train, monkeypatch
):
    torch.manual_seed(0)
    trained = HumanParser(input_scale=0.5)
    trained.save_pretrained(tmp_path / "trained")
    out = tmp_path / "run"
    run = ["train", "parser", "--data", str(train), "--out", str(out), "--size", "128x96"]
    run += ["--batch", "2", "--workers", "0", "--checkpoint-every", "1"]
    started = [*run, "--init", str(tmp_path / "trained"), "--input-scale", "1"]
    result = CliRunner().invoke(app, [*started, "--steps", "1"])
    assert result.exit_code == 0, result.output
    saved = HumanParser.from_pretrained(out / "parser")
    assert saved.config["input_scale"] == 1  # the network now sees the photo at full size
    assert saved.network_logits(torch.zeros(1, 3, 128, 96)).shape[-2:] == (128, 96)

    resumed = [*run, "--resume", "--steps", "2"]
    _assert_refused([*resumed, "--input-scale", "0.5"], "resume it with that scale")
    result = CliRunner().invoke(app, resumed)
    assert result.exit_code == 0, result.output
    assert HumanParser.from_pretrained(out / "parser").config["input_scale"] == 1

    fresh = ["train", "parser", "--data", str(train), "--out", str(tmp_path / "fresh")]
    _assert_refused([*fresh, "--input-scale", "0"], "give a share in (0, 1]")
    _assert_refused([*fresh, "--input-scale", "1.5"], "give a share in (0, 1]")
    fresh[1] = "gmm"
    _assert_refused([*fresh, "--input-scale", "1"], "use it with parser")


def test_input_scale_keeps_the_init_parsers_weights(tmp_path, train, monkeypatch):
    seen = _record_trainer(monkeypatch, "parser")
    torch.manual_seed(0)
    HumanParser(input_scale=0.5).save_pretrained(tmp_path / "trained")
    trained = HumanParser.from_pretrained(tmp_path / "trained")
    arguments = ["train", "parser", "--data", str(train), "--out", str(tmp_path / "run")]
    arguments += ["--init", str(tmp_path / "trained")]
    assert CliRunner().invoke(app, [*arguments, "--input-scale", "0.75"]).exit_code == 0
    rescaled = seen["value"]
    assert rescaled.input_scale == 0.75
    for before, after in zip(trained.parameters(), rescaled.parameters(), strict=True):
        assert torch.equal(before, after)
    assert CliRunner().invoke(app, arguments).exit_code == 0
    assert seen["value"].input_scale == 0.5  # what --init has


def test_a_resumed_parser_run_keeps_its_label_balance(tmp_path, train):
    out = tmp_path / "run"
    run = ["train", "parser", "--data", str(train), "--out", str(out), "--size", "128x96"]
    run += ["--batch", "2", "--workers", "0", "--checkpoint-every", "1"]
    result = CliRunner().invoke(app, [*run, "--steps", "1", "--balance-labels"])
    assert result.exit_code == 0, result.output

    resumed = [*run, "--resume", "--steps", "2"]
    _assert_refused(resumed, "not --no-balance-labels: resume it with --balance-labels")
    result = CliRunner().invoke(app, [*resumed, "--balance-labels"])
    assert result.exit_code == 0, result.output


def test_parse_refiner_grows_the_init_parser_and_a_resumed_run_keeps_it(tmp_path, train):
    torch.manual_seed(0)
    HumanParser(input_scale=1.0).save_pretrained(tmp_path / "trained")
    out = tmp_path / "run"
    run = _tiny_run("parser", train, out)
    started = [*run, "--init", str(tmp_path / "trained"), "--parse-refiner"]
    result = CliRunner().invoke(app, [*started, "--steps", "1"])
    assert result.exit_code == 0, result.output
    assert HumanParser.from_pretrained(out / "parser").refiner is not None

    result = CliRunner().invoke(app, [*run, "--resume", "--steps", "2"])
    assert result.exit_code == 0, result.output
    assert HumanParser.from_pretrained(out / "parser").refiner is not None

    run = _tiny_run("parser", train, tmp_path / "plain")
    assert CliRunner().invoke(app, [*run, "--steps", "1"]).exit_code == 0
    _assert_refused(
        [*run, "--resume", "--steps", "2", "--parse-refiner"], "without --parse-refiner"
    )
    run[1] = "gmm"
    _assert_refused([*run, "--parse-refiner"], "use it with parser")


def test_dice_weight_reaches_the_parsers_loss_and_a_resumed_run_keeps_it(tmp_path, train):
    run = _tiny_run("parser", train, tmp_path / "run")
    result = CliRunner().invoke(app, [*run, "--steps", "1", "--dice-weight", "0.5"])
    assert result.exit_code == 0, result.output

    resumed = [*run, "--resume", "--steps", "2"]
    _assert_refused(resumed, "resume it with --dice-weight 0.5")
    result = CliRunner().invoke(app, [*resumed, "--dice-weight", "0.5"])
    assert result.exit_code == 0, result.output
    run[1] = "tom"
    _assert_refused([*run, "--dice-weight", "1"], "use it with parser")
    run[1] = "parser"
    _assert_refused([*run, "--dice-weight", "-1"], "give 0 or more")


def test_keypoint_weight_reaches_the_parsers_loss_and_a_resumed_run_keeps_it(tmp_path, train):
    run = _tiny_run("parser", train, tmp_path / "run")
    result = CliRunner().invoke(app, [*run, "--steps", "1", "--keypoint-weight", "3"])
    assert result.exit_code == 0, result.output
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert state["loss_settings"]["keypoint_weight"] == 3.0

    resumed = [*run, "--resume", "--steps", "2"]
    _assert_refused(resumed, "resume it with --keypoint-weight 3")
    result = CliRunner().invoke(app, [*resumed, "--keypoint-weight", "3"])
    assert result.exit_code == 0, result.output
    _assert_refused([*run, "--keypoint-weight", "0"], "give a positive weight")
    run[1] = "gmm"
    _assert_refused([*run, "--keypoint-weight", "3"], "use it with parser")
