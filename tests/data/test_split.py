from __future__ import annotations

import bisect
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tryon.cli import app
from tryon.data.split import photo_id, split_by_id_blocks
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
