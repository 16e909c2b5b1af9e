from __future__ import annotations

import bisect
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from tryon.cli import app
from tryon.data.split import (
    PairSplit,
    photo_id,
    split_by_groups,
    split_by_id_blocks,
    split_pairs_by,
)
from tryon.data.synth.writer import write_dataset
from tryon.data.viton import read_pairs
from tryon.errors import DatasetError

COMMITTED_SPLIT = Path(__file__).parents[2] / "docs" / "splits" / "viton"


def pairs_with_ids(ids: list[int]) -> list[tuple[str, str]]:
    return [(f"{i:06d}_0.jpg", f"{i:06d}_1.jpg") for i in ids]


def test_held_out_people_never_appear_in_training_nor_near_it():
    pairs = pairs_with_ids(list(range(3, 20000, 3)))

    split = split_by_id_blocks(pairs, validation_fraction=0.1, block=500, gap=20, seed=3)

    train_ids = {photo_id(p) for p, _ in split.train}
    held_ids = {photo_id(p) for p, _ in split.validation}
    assert train_ids.isdisjoint(held_ids)
    assert 0.08 < len(held_ids) / len(pairs) < 0.16
    # No training photo lies within 20 ids of a held-out one (neighbouring ids are often
    # the same model).
    assert all(abs(t - h) > 20 for t in train_ids for h in held_ids)
    # Held-out photos come in whole blocks of neighbours, not scattered single photos.
    assert {h // 500 for h in held_ids} == {h // 500 for h in held_ids if (h + 3) in held_ids}
    assert len(split.train) + len(split.validation) + len(split.dropped) == len(pairs)


def test_the_split_is_reproducible_and_seeded():
    pairs = pairs_with_ids(list(range(0, 10000, 2)))

    first = split_by_id_blocks(pairs, seed=1)
    again = split_by_id_blocks(pairs, seed=1)
    other = split_by_id_blocks(pairs, seed=2)

    assert first == again
    assert first.validation != other.validation


def test_bad_requests_are_explained():
    with pytest.raises(DatasetError, match="numeric id"):
        split_by_id_blocks([("front.jpg", "shirt.jpg")])
    with pytest.raises(DatasetError, match="between 0 and 1"):
        split_by_id_blocks(pairs_with_ids([1, 2]), validation_fraction=1.5)
    with pytest.raises(DatasetError, match="smaller --block"):
        split_by_id_blocks(pairs_with_ids([1, 2, 3]), block=1000)


def test_split_command_writes_pairs_files_that_train_and_eval_read(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    ids = list(range(0, 4000, 4))
    (data / "pairs.txt").write_text("".join(f"{p} {c}\n" for p, c in pairs_with_ids(ids)))

    result = CliRunner().invoke(app, ["split", "--data", str(data), "--out", str(tmp_path / "s")])

    assert result.exit_code == 0, result.output
    train = read_pairs(tmp_path / "s" / "train_pairs.txt")
    held = read_pairs(tmp_path / "s" / "val_pairs.txt")
    assert train and held and not set(train) & set(held)
    assert "validation pairs" in result.output


def test_the_committed_viton_split_keeps_people_apart():
    train = read_pairs(COMMITTED_SPLIT / "train_pairs.txt")
    held = read_pairs(COMMITTED_SPLIT / "val_pairs.txt")

    held_ids = sorted(photo_id(p) for p, _ in held)
    assert len(held) > 500
    for person, _ in train:
        i = photo_id(person)
        nearest = bisect.bisect_left(held_ids, i - 20)
        assert nearest == len(held_ids) or held_ids[nearest] > i + 20, person


def test_a_split_can_be_split_again_to_hold_out_a_selection_set(tmp_path):
    """The training pairs of one split, split again: pairs to pick the best training step
    on (`tryon train --val-data`) that the final held-out evaluation never sees."""
    data = tmp_path / "data"
    data.mkdir()
    ids = list(range(0, 4000, 4))
    (data / "pairs.txt").write_text("".join(f"{p} {c}\n" for p, c in pairs_with_ids(ids)))
    runner = CliRunner()
    assert (
        runner.invoke(app, ["split", "--data", str(data), "--out", str(tmp_path / "s")]).exit_code
        == 0
    )
    first_train = tmp_path / "s" / "train_pairs.txt"

    arguments = ["split", "--data", str(data), "--pairs", str(first_train), "--validation", "0.2"]
    result = runner.invoke(app, [*arguments, "--out", str(tmp_path / "selection")])

    assert result.exit_code == 0, result.output
    selection = set(read_pairs(tmp_path / "selection" / "val_pairs.txt"))
    rest = set(read_pairs(tmp_path / "selection" / "train_pairs.txt"))
    assert selection and rest
    assert selection | rest <= set(read_pairs(first_train))


def test_the_committed_selection_set_is_apart_from_the_held_out_pairs():
    held = set(read_pairs(COMMITTED_SPLIT / "val_pairs.txt"))
    selection = set(read_pairs(COMMITTED_SPLIT / "selection" / "val_pairs.txt"))
    rest = set(read_pairs(COMMITTED_SPLIT / "selection" / "train_pairs.txt"))
    assert len(selection) > 100
    assert not (selection | rest) & held
    selection_ids = sorted(photo_id(p) for p, _ in selection)
    for person, _ in rest:  # no one in both: 20 ids apart at least
        i = photo_id(person)
        nearest = bisect.bisect_left(selection_ids, i - 20)
        assert nearest == len(selection_ids) or selection_ids[nearest] > i + 20, person


REAL_VITON = Path("/work/shared/viton/train")


@pytest.mark.skipif(not REAL_VITON.is_dir(), reason="needs the VITON pairs in ../shared")
def test_the_id_block_mode_still_writes_the_committed_viton_split(tmp_path):
    result = CliRunner().invoke(
        app, ["split", "--data", str(REAL_VITON), "--out", str(tmp_path), "--by", "id-block"]
    )

    assert result.exit_code == 0, result.output
    for name in ("train_pairs.txt", "val_pairs.txt"):
        assert (tmp_path / name).read_bytes() == (COMMITTED_SPLIT / name).read_bytes()


def reencode(source: Path, target: Path, quality: int = 80) -> None:
    """A near-duplicate: the photo enlarged by two pixels, cropped back, saved as JPEG."""
    image = Image.open(source).convert("RGB")
    width, height = image.size
    image = image.resize((width + 2, height + 2)).crop((1, 1, width + 1, height + 1))
    image.save(target, quality=quality)


@pytest.fixture(scope="module")
def shop_with_duplicates(tmp_path_factory):
    """Twelve synthetic pairs, plus a re-encoded copy of person 0 wearing garment 5 and a
    re-encoded copy of garment 1 worn by person 7, under names of their own."""
    root = tmp_path_factory.mktemp("shop")
    write_dataset(root, n=12, seed=5)
    reencode(root / "image" / "000000_0.jpg", root / "image" / "copy_of_person_0.jpg")
    reencode(root / "cloth" / "000001_1.jpg", root / "cloth" / "copy_of_garment_1.jpg")
    with (root / "pairs.txt").open("a") as pairs:
        pairs.write("copy_of_person_0.jpg 000005_1.jpg\n000007_0.jpg copy_of_garment_1.jpg\n")
    return root


def side_of(split: PairSplit, pair: tuple[str, str]) -> str:
    return next(name for name in ("train", "validation", "dropped") if pair in getattr(split, name))


def test_near_duplicate_photos_land_on_the_same_side(shop_with_duplicates):
    pairs = read_pairs(shop_with_duplicates / "pairs.txt")
    sides = []
    for seed in range(8):
        result = split_pairs_by(
            shop_with_duplicates, pairs, ["person", "garment"], validation_fraction=0.5, seed=seed
        )
        split = result.split
        # The copy of the person is found as a duplicate of its original and of nothing
        # else (synthetic plain garments can be near-duplicates of one another).
        assert result.groups["person"].duplicate_groups == 1
        for original, copy in [
            (("000000_0.jpg", "000000_1.jpg"), ("copy_of_person_0.jpg", "000005_1.jpg")),
            (("000001_0.jpg", "000001_1.jpg"), ("000007_0.jpg", "copy_of_garment_1.jpg")),
        ]:
            assert side_of(split, original) == side_of(split, copy)
            sides.append(side_of(split, original))
        assert len(split.train) + len(split.validation) + len(split.dropped) == len(pairs)
    assert {"train", "validation"} <= set(sides)  # the seeds do move them


def test_a_validation_pair_shares_no_person_nor_garment_group_with_training():
    """People who wear many garments and garments many people wear: one linked component,
    cut by people; the pairs across the cut are dropped and counted."""
    rng = np.random.default_rng(0)
    people = [f"person{i}.jpg" for i in range(40)]
    garments = [f"garment{i}.jpg" for i in range(40)]
    pairs = sorted({(people[p], garments[g]) for p, g in rng.integers(0, 40, (160, 2))})
    groups = {
        "person": {name: i // 2 for i, name in enumerate(people)},  # twins: near-duplicates
        "garment": {name: i // 2 for i, name in enumerate(garments)},
    }

    result = split_by_groups(pairs, groups, validation_fraction=0.2, seed=1)

    split = result.split
    assert result.components == 1 and result.cut == len(pairs)
    assert split.train and split.validation and split.dropped
    for kind, photo in (("person", 0), ("garment", 1)):
        held = {groups[kind][pair[photo]] for pair in split.validation}
        trained = {groups[kind][pair[photo]] for pair in split.train}
        assert not held & trained, kind
    for person, garment in split.dropped:  # each dropped pair had a foot on each side
        person_held = groups["person"][person] in {groups["person"][p] for p, _ in split.validation}
        garment_held = groups["garment"][garment] in {
            groups["garment"][g] for _, g in split.validation
        }
        assert person_held != garment_held
    assert len(split.validation) == pytest.approx(0.2 * len(pairs), abs=8)


def test_split_by_person_and_garment_reports_groups_and_sizes(shop_with_duplicates, tmp_path):
    arguments = ["split", "--data", str(shop_with_duplicates), "--out", str(tmp_path)]
    result = CliRunner().invoke(
        app, [*arguments, "--by", "person,garment", "--validation", "0.3", "--json"]
    )

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["groups"]["person"]["duplicate_groups"] == 1
    assert summary["groups"]["garment"]["duplicate_groups"] >= 1
    train, held = read_pairs(tmp_path / "train_pairs.txt"), read_pairs(tmp_path / "val_pairs.txt")
    assert (summary["train"], summary["validation"]) == (len(train), len(held))
    assert summary["train"] + summary["validation"] + summary["dropped"] == 14
    assert "near-duplicate groups" in result.stderr


def test_unknown_split_kinds_are_refused_with_the_choices(shop_with_duplicates, tmp_path):
    arguments = ["split", "--data", str(shop_with_duplicates), "--out", str(tmp_path)]
    result = CliRunner().invoke(app, [*arguments, "--by", "person,colour"])

    assert result.exit_code == 2
    assert "choose from id-block" in " ".join(result.output.split())
