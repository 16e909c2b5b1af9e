"""Recipes with `parsed_by: PARSER` (GMM and TOM): the networks train on the representation a
parser makes of each photo (as in production), while their targets stay the dataset's."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from recipes import tiny_recipe, train
from tiny_trainers import tiny_gmm, tiny_gmm_trainer, tiny_tom_trainer

from tryon.data.batches import collate_tensors
from tryon.data.viton import VitonDataset
from tryon.errors import InvalidInputError, WeightsError
from tryon.models import GeometricMatcher, HumanParser, decode_keypoints
from tryon.representation import GMM_PERSON_CHANNELS, build_representation
from tryon.train.components import PersonAnalyst, gmm_targets

SIZE = (128, 96)


@pytest.fixture(scope="module")
def batch(train_data):
    data = VitonDataset(train_data, size=SIZE)
    return collate_tensors([data[i] for i in range(2)])


@pytest.fixture(scope="module")
def parser_folder(tmp_path_factory):
    """An untrained parser: its parse is nothing like the dataset's."""
    torch.manual_seed(5)
    return HumanParser().save_pretrained(tmp_path_factory.mktemp("p") / "parser")


def test_the_analyst_gives_the_parsers_representation_and_the_targets_stay_the_datasets(
    batch, parser_folder
):
    analyst = PersonAnalyst.from_folder(parser_folder, torch.device("cpu"))
    with torch.no_grad():
        parse_logits, heatmaps = HumanParser.from_pretrained(parser_folder)(batch["person"])
    expected = build_representation(
        batch["person"], parse_logits.argmax(1), decode_keypoints(heatmaps)
    )
    seen = analyst(batch)
    truth = PersonAnalyst(torch.device("cpu"))(batch)
    assert torch.equal(seen.agnostic, expected.agnostic)
    assert torch.equal(seen.heatmaps, expected.heatmaps)
    assert not torch.equal(seen.tryon_region, truth.tryon_region)
    # Without warp-gt/ (real photos) the warped garment's target is where the person truly
    # wears it, whatever the parser says.
    real_photos = {key: value for key, value in batch.items() if not key.startswith("warp_gt")}
    _, target_mask = gmm_targets(real_photos)
    assert torch.equal(target_mask, truth.garment_region)
    assert not torch.equal(target_mask, seen.garment_region)


def test_a_tom_trained_on_the_parsers_representation_paints_its_try_on_region(batch, parser_folder):
    analyst = PersonAnalyst.from_folder(parser_folder, torch.device("cpu"))
    weights = {"adversarial_weight": 0, "feature_weight": 0}
    trainer = tiny_tom_trainer(lr=1e-3, analyst=analyst, **weights)
    generated = trainer._generate(batch)
    outside = generated.rep.tryon_region == 0
    assert torch.equal(generated.final * outside, batch["person"] * outside)
    # Validation sees the try-on as the pipeline shows it: the bare arms are the photo's.
    kept = generated.rep.repainted_region(generated.warp.warped_mask) == 0
    assert (kept & ~outside).any()
    assert torch.equal(generated.dressed * kept, batch["person"] * kept)
    assert trainer.validation_metric == "region_ssim_parsed"
    assert trainer.loss_settings["parsed_by"] == str(parser_folder)
    assert tiny_tom_trainer(lr=1e-3).validation_metric == "region_ssim_gt_parse"


def _tom_recipe(tmp_path, name: str = "tom.yaml", **changes) -> Path:
    """A tiny TOM recipe `tmp_path/name` without the GAN terms, on `tiny_gmm`'s warps."""
    gmm = tmp_path / "gmm"
    if not gmm.exists():
        tiny_gmm().save_pretrained(gmm)
    losses = {"adversarial_weight": 0, "feature_weight": 0}
    return tiny_recipe(tmp_path / name, "tom", gmm=str(gmm), losses=losses, **changes)


def _refusal(component: str, *arguments) -> str:
    result = train(component, *arguments)
    assert isinstance(result.exception, InvalidInputError | WeightsError), result.output
    return str(result.exception)


def test_a_parsed_by_run_validates_end_to_end_and_resumes_only_with_its_parser(
    tmp_path, train_data, parser_folder
):
    # Two pairs train, the other two are held out.
    lines = (train_data / "pairs.txt").read_text().splitlines()
    (tmp_path / "train_pairs.txt").write_text("\n".join(lines[:2]) + "\n")
    (tmp_path / "held_out.txt").write_text("\n".join(lines[2:]) + "\n")
    data = {"pairs": str(tmp_path / "train_pairs.txt")}
    validation = {"pairs": str(tmp_path / "held_out.txt"), "every": 1, "size": 2}
    recipe = _tom_recipe(tmp_path, parsed_by=str(parser_folder), data=data, validation=validation)
    out = tmp_path / "run"
    run = ["--data", train_data, "--out", out, "--val-data", train_data]
    result = train("tom", "--config", recipe, *run)
    assert result.exit_code == 0, result.output
    with open(out / "validation.csv") as log:
        assert "region_ssim_parsed" in next(csv.reader(log))

    other = _tom_recipe(tmp_path, "other.yaml", data=data, validation=validation)
    message = _refusal("tom", "--config", other, *run, "--resume", "--steps", 2)
    assert f"trains with parsed_by '{parser_folder}'" in message
    result = train("tom", "--out", out, "--resume", "--steps", 2)
    assert result.exit_code == 0, result.output


def test_parsed_by_is_not_a_parser_key_and_must_name_a_parser_folder(
    tmp_path, train_data, parser_folder
):
    recipe = tiny_recipe(tmp_path / "p.yaml", "parser", parsed_by=str(parser_folder))
    message = _refusal("parser", "--config", recipe, "--data", train_data, "--out", tmp_path / "p")
    assert "unknown key parsed_by" in message
    gmm = GeometricMatcher(person_channels=GMM_PERSON_CHANNELS).save_pretrained(tmp_path / "g")
    recipe = _tom_recipe(tmp_path, parsed_by=str(gmm))
    message = _refusal("tom", "--config", recipe, "--data", train_data, "--out", tmp_path / "t")
    assert "not a 'HumanParser'" in message


def test_a_gmm_trained_on_the_parsers_representation_scores_the_worn_garment(batch, parser_folder):
    analyst = PersonAnalyst.from_folder(parser_folder, torch.device("cpu"))
    trainer = tiny_gmm_trainer(lr=1e-3, analyst=analyst)
    assert trainer.validation_metric == "warp_iou_parsed"
    assert trainer.loss_settings["parsed_by"] == str(parser_folder)
    before = [p.clone() for p in trainer.gmm.parameters()]
    assert torch.isfinite(torch.tensor(trainer.train_step(batch, 0)["loss"]))
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.gmm.parameters(), strict=True))
    assert 0 <= trainer.validate([batch])["warp_iou_parsed"] <= 1
    assert tiny_gmm_trainer(lr=1e-3).validation_metric == "warp_iou"
