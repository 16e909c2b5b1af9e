"""The synthetic data generator: reproducible, exact ground truth, readable as VITON."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from tryon import labels as L
from tryon.cli import main
from tryon.data.synth import generate_sample, render_garment
from tryon.data.synth.writer import write_dataset
from tryon.data.viton import VitonDataset

SEED = 11
SAMPLES = range(24)


@pytest.fixture(scope="module")
def samples():
    return [generate_sample(SEED, i) for i in SAMPLES]


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.suffix in (".jpg", ".png", ".json") and p.name != "synth.json"
    }


def test_same_seed_and_index_give_the_same_sample_and_another_seed_does_not():
    a, b = generate_sample(5, 3), generate_sample(5, 3)
    assert np.array_equal(a.person, b.person) and np.array_equal(a.parse, b.parse)
    assert np.array_equal(a.cloth, b.cloth) and np.array_equal(a.keypoints, b.keypoints)
    other = generate_sample(6, 3)
    assert not np.array_equal(a.person, other.person)


def test_first_samples_are_byte_identical_whatever_n_and_workers(tmp_path):
    write_dataset(tmp_path / "small", n=3, seed=SEED, workers=1)
    write_dataset(tmp_path / "large", n=5, seed=SEED, workers=2)
    small, large = _files(tmp_path / "small"), _files(tmp_path / "large")
    assert len(small) == 3 * 7
    assert all(large[name] == data for name, data in small.items())


# Labels a keypoint may lie on when nothing covers it (sleeves cover arms, trousers legs).
_ARM = {L.UPPER_CLOTHES}
_LEG = {L.PANTS, L.SKIRT}
_ALLOWED = {
    L.NOSE: {L.FACE},
    L.R_EYE: {L.FACE},
    L.L_EYE: {L.FACE},
    L.R_EAR: {L.FACE},
    L.L_EAR: {L.FACE},
    L.NECK: {L.BACKGROUND, L.UPPER_CLOTHES},  # LIP has no neck label
    L.R_SHOULDER: _ARM | {L.RIGHT_ARM},
    L.R_ELBOW: _ARM | {L.RIGHT_ARM},
    L.R_WRIST: _ARM | {L.RIGHT_ARM},
    L.L_SHOULDER: _ARM | {L.LEFT_ARM},
    L.L_ELBOW: _ARM | {L.LEFT_ARM},
    L.L_WRIST: _ARM | {L.LEFT_ARM},
    L.R_HIP: _LEG | {L.UPPER_CLOTHES, L.RIGHT_LEG},
    L.R_KNEE: _LEG | {L.RIGHT_LEG, L.RIGHT_SHOE},
    L.R_ANKLE: _LEG | {L.RIGHT_LEG, L.RIGHT_SHOE},
    L.L_HIP: _LEG | {L.UPPER_CLOTHES, L.LEFT_LEG},
    L.L_KNEE: _LEG | {L.LEFT_LEG, L.LEFT_SHOE},
    L.L_ANKLE: _LEG | {L.LEFT_LEG, L.LEFT_SHOE},
}


def test_visible_keypoints_lie_on_their_body_part(samples):
    checked = misplaced = 0
    for sample in samples:
        for index, (x, y, confidence) in enumerate(sample.keypoints):
            if confidence < 1:
                continue
            label = int(sample.parse[int(round(y)), int(round(x))])
            checked += 1
            misplaced += label not in _ALLOWED[index]
    assert checked > 0.6 * len(samples) * L.NUM_KEYPOINTS
    assert misplaced <= 0.01 * checked


def test_most_keypoints_in_the_frame_are_marked_visible(samples):
    confidences = np.concatenate([s.keypoints[:, 2] for s in samples])
    in_frame = confidences[confidences > 0]
    assert (in_frame == 1).mean() > 0.8
    # ... but arms in front of the body do hide some of them.
    assert (in_frame == 0.5).any()


def test_upper_clothes_label_is_the_visible_part_of_the_worn_garment(samples):
    for sample in samples:
        garment = sample.warp_gt_mask > 0
        label = sample.parse == L.UPPER_CLOTHES
        assert label.sum() > 1000
        # Labelled garment pixels lie on the garment (up to the anti-aliased edge) ...
        assert (label & ~garment).sum() <= 0.03 * label.sum()
        # ... and garment pixels without the label are covered by arms, hair or face.
        hidden = garment & ~label
        occluders = np.isin(sample.parse, (L.LEFT_ARM, L.RIGHT_ARM, L.HAIR, L.FACE))
        assert (hidden & ~occluders).sum() <= 0.03 * garment.sum()


def test_cloth_mask_matches_the_non_background_pixels_of_the_product_photo():
    ious = []
    for index in range(24):
        photo, mask = render_garment(SEED, index)
        image = photo.astype(np.float32)
        background = np.median(
            np.concatenate([image[:4].reshape(-1, 3), image[-4:].reshape(-1, 3)]), 0
        )
        inside = mask > 0
        garment_colour = np.median(image[inside], 0)
        if np.abs(garment_colour - background).max() < 60:
            continue  # white on white: only the mask can tell, which is what it is for
        # Shadows are neutral darkenings of the background; the garment is its own colour.
        distance = np.abs(image - garment_colour).max(-1)
        foreground = distance < np.abs(image - background).max(-1)
        union = (foreground | inside).sum()
        ious.append((foreground & inside).sum() / union)
    assert len(ious) >= 6
    assert np.mean(ious) > 0.9


def test_reader_reads_what_the_generator_writes(tmp_path):
    write_dataset(tmp_path, n=4, seed=SEED, workers=1)
    dataset = VitonDataset(tmp_path)
    assert len(dataset) == 4
    for index in range(4):
        expected = generate_sample(SEED, index)
        read = dataset.read_sample(index)
        assert np.array_equal(read.parse, expected.parse)
        assert np.array_equal(read.cloth_mask > 0, expected.cloth_mask > 0)
        assert np.allclose(read.keypoints, expected.keypoints, atol=1e-3)
        # JPEG changes pixels a little, nothing more.
        assert np.abs(read.person.astype(int) - expected.person).mean() < 4
        assert read.warp_gt is not None and read.warp_gt_mask is not None
    item = dataset[0]
    assert item["person"].shape == (3, 256, 192) and item["parse"].shape == (256, 192)
    unpaired = VitonDataset(tmp_path, pairs="pairs_unpaired.txt")
    names = [(unpaired.items[i].person_name, unpaired.items[i].cloth_name) for i in range(4)]
    assert all(p.split("_")[0] != c.split("_")[0] for p, c in names)


def test_other_sizes_scale_the_whole_scene():
    small = generate_sample(SEED, 0, (128, 96))
    assert small.person.shape == (128, 96, 3) and small.parse.shape == (128, 96)
    big = generate_sample(SEED, 0, (512, 384))
    share = lambda s: (s.parse == L.UPPER_CLOTHES).mean()  # noqa: E731
    assert abs(share(small) - share(big)) < 0.02


def run_cli(args: list[str]) -> int:
    """Run `tryon ARGS` as the console script does; return its exit status."""
    try:
        main(args)
    except SystemExit as done:
        return int(done.code or 0)
    return 0


def test_cli_writes_the_layout_and_a_preview(tmp_path):
    out = tmp_path / "data"
    args = ["synth", "--out", str(out), "--n", "3", "--workers", "1"]
    assert run_cli([*args, "--preview", str(tmp_path / "p.png")]) == 0
    for folder in (
        "image",
        "cloth",
        "cloth-mask",
        "image-parse",
        "openpose_json",
        "warp-gt",
        "warp-gt-mask",
    ):
        assert len(list((out / folder).iterdir())) == 3
    pose = json.loads((out / "openpose_json" / "000000_0_keypoints.json").read_text())
    assert len(pose["people"][0]["pose_keypoints_2d"]) == 54
    sheet = cv2.imread(str(tmp_path / "p.png"))
    assert sheet is not None and sheet.shape[0] >= 256


def test_cli_refuses_to_overwrite_a_dataset(tmp_path, capsys):
    write_dataset(tmp_path, n=1, seed=0)
    before = (tmp_path / "image" / "000000_0.jpg").read_bytes()
    assert run_cli(["synth", "--out", str(tmp_path), "--n", "1", "--seed", "9"]) != 0
    assert "--overwrite" in capsys.readouterr().err
    assert (tmp_path / "image" / "000000_0.jpg").read_bytes() == before


def test_cli_rejects_a_bad_size(tmp_path, capsys):
    assert run_cli(["synth", "--out", str(tmp_path / "x"), "--size", "250x190"]) != 0
    assert "multiples of 16" in capsys.readouterr().err


def test_cli_exit_codes_tell_usage_errors_from_product_errors(tmp_path, capsys):
    # 2: the command line itself is wrong (a malformed value, an unknown option).
    assert run_cli(["synth", "--out", str(tmp_path / "x"), "--size", "tall"]) == 2
    assert "HEIGHTxWIDTH" in capsys.readouterr().err
    assert run_cli(["synth", "--out", str(tmp_path / "x"), "--colour", "red"]) == 2
    # 1: the command line is fine, what it asks for cannot be done.
    assert run_cli(["synth", "--out", str(tmp_path / "x"), "--size", "250x190"]) == 1
