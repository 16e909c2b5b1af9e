from __future__ import annotations

import pytest
import torch

from tryon.data.augment import MIRRORED_KEYPOINTS, Augmentation, augment_item, zoom_item
from tryon.data.synth.writer import write_dataset
from tryon.data.viton import VitonDataset
from tryon.errors import InvalidInputError
from tryon.labels import (
    L_SHOULDER,
    LEFT_ARM,
    LEFT_LEG,
    PARSE_PALETTE,
    R_SHOULDER,
    R_WRIST,
    RIGHT_ARM,
    RIGHT_LEG,
)
from tryon.train.config import load_config


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("augment")
    write_dataset(root, n=3, seed=17)
    return root


@pytest.fixture(scope="module")
def item(dataset_root):
    return VitonDataset(dataset_root, size=(128, 96))[0]


def mean_column(parse: torch.Tensor, label: int) -> float:
    return torch.nonzero(parse == label)[:, 1].float().mean().item()


def test_a_flipped_sample_swaps_the_arms_and_mirrors_the_keypoints(item):
    flipped = augment_item(item, Augmentation(flip=1.0))

    width = item["parse"].shape[1]
    # The person's right arm is on the image's left before and after: labels swapped.
    for sample in (item, flipped):
        assert mean_column(sample["parse"], RIGHT_ARM) < mean_column(sample["parse"], LEFT_ARM)
        keypoints = sample["keypoints"]
        assert keypoints[R_SHOULDER, 0] < keypoints[L_SHOULDER, 0]
    mirrored = item["parse"].flip(-1)
    assert torch.equal(flipped["parse"] == RIGHT_ARM, mirrored == LEFT_ARM)
    assert torch.equal(flipped["parse"] == LEFT_LEG, mirrored == RIGHT_LEG)
    assert torch.equal(flipped["person"], item["person"].flip(-1))
    seen = 0
    for right, left in MIRRORED_KEYPOINTS:
        for new, old in ((right, left), (left, right)):
            original = item["keypoints"][old]
            if original[2] > 0:
                seen += 1
                assert flipped["keypoints"][new, 0].item() == pytest.approx(width - 1 - original[0])
                assert flipped["keypoints"][new, 1:].tolist() == original[1:].tolist()
            else:
                assert flipped["keypoints"][new].tolist() == [0, 0, 0]
    assert seen >= 8
    # The garment is mirrored with the person it is worn by, and so is the warp target.
    assert torch.equal(flipped["cloth"], item["cloth"].flip(-1))
    assert torch.equal(flipped["warp_gt_mask"], item["warp_gt_mask"].flip(-1))


def painted_item(height: int = 64, width: int = 48) -> dict[str, torch.Tensor]:
    """A person made of label rectangles whose photo is each label's palette colour, with
    a keypoint at the middle of the right arm's rectangle."""
    parse = torch.zeros(height, width, dtype=torch.long)
    parse[10:50, 16:32] = 5
    parse[14:40, 8:16] = RIGHT_ARM
    parse[14:40, 32:40] = LEFT_ARM
    palette = torch.tensor(PARSE_PALETTE, dtype=torch.float32) / 127.5 - 1
    keypoints = torch.zeros(18, 3)
    keypoints[R_WRIST] = torch.tensor([11.5, 27.0, 0.9])
    return {
        "person": palette[parse].permute(2, 0, 1),
        "parse": parse,
        "keypoints": keypoints,
        "cloth": torch.zeros(3, height, width),
    }


@pytest.mark.parametrize("zoom", [0.8, 1.25])
def test_photo_parse_and_keypoints_stay_aligned_under_zoom(zoom):
    item = painted_item()

    zoomed = zoom_item(item, zoom)

    parse, person = zoomed["parse"], zoomed["person"]
    palette = torch.tensor(PARSE_PALETTE, dtype=torch.float32) / 127.5 - 1
    # Away from label edges (where bilinear colours blend), each pixel has its label's colour.
    same_around = torch.ones_like(parse, dtype=torch.bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            same_around &= parse == torch.roll(parse, (dy, dx), (0, 1))
    colour_error = (person.permute(1, 2, 0) - palette[parse]).abs().amax(dim=-1)
    assert colour_error[same_around].max() < 1e-4
    area = (item["parse"] == 5).sum().item()
    assert (parse == 5).sum().item() == pytest.approx(area * zoom**2, rel=0.1)
    x, y, confidence = zoomed["keypoints"][R_WRIST].tolist()
    assert confidence == pytest.approx(0.9)
    assert parse[round(y), round(x)] == RIGHT_ARM
    # The whole person stays in frame.
    assert set(parse.unique().tolist()) == set(item["parse"].unique().tolist())


def test_a_zoom_in_keeps_a_person_near_the_edge_in_frame():
    item = painted_item()
    item["parse"] = torch.roll(item["parse"], -7, dims=1)  # the right arm from column 1

    zoomed = zoom_item(item, 1.15)

    area = (item["parse"] == RIGHT_ARM).sum().item()
    assert (zoomed["parse"] == RIGHT_ARM).sum().item() > 0.9 * area * 1.15**2


def test_colour_changes_the_photo_and_the_garment_alike(item):
    same = dict(item, cloth=item["person"].clone())

    changed = augment_item(
        same, Augmentation(colour=0.5, flip=0.5), torch.Generator().manual_seed(3)
    )

    assert not torch.equal(changed["person"], item["person"].flip(-1))
    assert not torch.equal(changed["person"], item["person"])
    assert torch.allclose(changed["cloth"], changed["person"])
    assert changed["person"].min() >= -1 and changed["person"].max() <= 1


def test_disabled_augmentation_leaves_samples_byte_identical(dataset_root):
    plain = VitonDataset(dataset_root, size=(128, 96))
    off = VitonDataset(dataset_root, size=(128, 96), augment=Augmentation())
    on = VitonDataset(dataset_root, size=(128, 96), augment=Augmentation(flip=1.0))

    for index in range(len(plain)):
        for key, value in plain[index].items():
            if isinstance(value, torch.Tensor):
                assert torch.equal(value, off[index][key]), key
    assert not torch.equal(on[0]["person"], plain[0]["person"])


def test_recipes_take_data_augment_and_refuse_bad_values(tmp_path):
    recipe = tmp_path / "parser.yaml"
    recipe.write_text("data:\n  augment: {flip: 0.5, colour: 0.2, scale: [0.9, 1.1]}\n")

    assert load_config("parser", recipe).data.augment == Augmentation(
        flip=0.5, colour=0.2, scale=(0.9, 1.1)
    )
    assert load_config("parser", None).data.augment.active is False

    recipe.write_text("data:\n  augment: {flip: 2}\n")
    with pytest.raises(InvalidInputError, match="data.augment.flip 2.0"):
        load_config("parser", recipe)
    recipe.write_text("data:\n  augment: {scale: 1.1}\n")
    with pytest.raises(InvalidInputError, match=r"pair of numbers like \[0.9, 1.1\]"):
        load_config("parser", recipe)
    recipe.write_text("data:\n  augment: {mirror: 0.5}\n")
    with pytest.raises(InvalidInputError, match="valid keys in data.augment: flip, colour, scale"):
        load_config("parser", recipe)
