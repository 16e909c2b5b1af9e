from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from tryon.data.viton import VitonDataset, read_keypoints, read_pair, read_parse
from tryon.errors import DatasetError
from tryon.labels import BODY25_TO_COCO18, FACE, PANTS, PARSE_PALETTE, UPPER_CLOTHES, palette_bytes

REAL_VITON = Path("/work/shared/viton/train")
HEIGHT, WIDTH = 32, 24


def parse_labels(index: int) -> np.ndarray:
    """A small parse map: background, a face on top, upper clothes, then pants."""
    labels = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    labels[2:8, 8:16] = FACE
    labels[10:20, 4:20] = UPPER_CLOTHES
    labels[20:30, 6:18] = PANTS
    labels[0, 0] = index  # tells the items apart
    return labels


def coco_keypoints(index: int) -> np.ndarray:
    keypoints = np.zeros((18, 3), dtype=np.float32)
    keypoints[:, 0] = np.arange(18) + index
    keypoints[:, 1] = np.arange(18) + 5
    keypoints[:, 2] = 0.9
    keypoints[3] = 0  # a keypoint OpenPose did not find
    return keypoints


def write_parse(path: Path, labels: np.ndarray, mode: str) -> None:
    if mode == "P":
        image = Image.fromarray(labels)
        image.putpalette(palette_bytes())
    elif mode == "L":
        image = Image.fromarray(labels)
    else:
        image = Image.fromarray(np.asarray(PARSE_PALETTE, dtype=np.uint8)[labels])
    image.save(path)


def write_pose(path: Path, keypoints: np.ndarray, key: str = "pose_keypoints_2d") -> None:
    people = [{key: keypoints.reshape(-1).tolist()}]
    path.write_text(json.dumps({"version": 1.3, "people": people}))


def write_dataset(
    root: Path,
    count: int = 2,
    *,
    parse_mode: str = "P",
    parse_folder: str = "image-parse",
    pose_folder: str = "openpose_json",
    mask_extension: str = ".png",
    warp_gt: bool = False,
) -> Path:
    """A tiny dataset in the VITON layout, as the synthetic generator writes it."""
    folders = ["image", "cloth", "cloth-mask", parse_folder, pose_folder]
    folders += ["warp-gt", "warp-gt-mask"] if warp_gt else []
    for folder in folders:
        (root / folder).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        person, cloth = f"{i:06d}_0", f"{i:06d}_1"
        photo = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
        Image.fromarray(photo).save(root / "image" / f"{person}.jpg")
        Image.fromarray(photo[::-1].copy()).save(root / "cloth" / f"{cloth}.jpg")
        mask = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
        mask[4:28, 4:20] = 255
        Image.fromarray(mask).save(root / "cloth-mask" / f"{cloth}{mask_extension}")
        write_parse(root / parse_folder / f"{person}.png", parse_labels(i), parse_mode)
        write_pose(root / pose_folder / f"{person}_keypoints.json", coco_keypoints(i))
        if warp_gt:
            Image.fromarray(photo).save(root / "warp-gt" / f"{person}.jpg")
            Image.fromarray(mask).save(root / "warp-gt-mask" / f"{person}.png")
    names = [(f"{i:06d}_0.jpg", f"{i:06d}_1.jpg") for i in range(count)]
    (root / "pairs.txt").write_text("".join(f"{p} {c}\n" for p, c in names))
    unpaired = [(p, names[(i + 1) % count][1]) for i, (p, _) in enumerate(names)]
    (root / "pairs_unpaired.txt").write_text("".join(f"{p} {c}\n" for p, c in unpaired))
    return root


def test_reads_items_as_tensors_at_the_model_resolution(tmp_path):
    dataset = VitonDataset(write_dataset(tmp_path), size=(64, 48))

    item = dataset[1]

    assert len(dataset) == 2
    assert item["person_name"] == "000001_0.jpg" and item["cloth_name"] == "000001_1.jpg"
    assert item["person"].shape == item["cloth"].shape == (3, 64, 48)
    assert item["person"].min() >= -1 and item["person"].max() <= 1
    assert item["cloth_mask"].shape == (1, 64, 48)
    assert item["cloth_mask"].min() == 0 and item["cloth_mask"].max() == 1
    assert item["parse"].shape == (64, 48) and item["parse"].dtype == torch.int64
    assert set(item["parse"].unique().tolist()) == {0, 1, FACE, UPPER_CLOTHES, PANTS}
    assert item["parse"][30, 24] == UPPER_CLOTHES  # row 15 of 32, scaled by 2
    assert item["parse"][40, 24] == PANTS
    assert "warp_gt" not in item


def test_keypoints_follow_the_resize_and_missing_ones_stay_zero(tmp_path):
    dataset = VitonDataset(write_dataset(tmp_path), size=(64, 48))

    keypoints = dataset[0]["keypoints"]

    assert keypoints.shape == (18, 3) and keypoints.dtype == torch.float32
    # Doubling the size maps pixel centre x to 2x + 0.5.
    assert keypoints[0].tolist() == pytest.approx([0.5, 10.5, 0.9])
    assert keypoints[17].tolist() == pytest.approx([34.5, 44.5, 0.9])
    assert keypoints[3].tolist() == [0, 0, 0]


def test_batches_through_a_dataloader(tmp_path):
    dataset = VitonDataset(write_dataset(tmp_path, count=3))

    batch = next(iter(DataLoader(dataset, batch_size=3)))

    assert batch["person"].shape == (3, 3, 256, 192)
    assert batch["keypoints"].shape == (3, 18, 3)
    assert batch["person_name"] == ["000000_0.jpg", "000001_0.jpg", "000002_0.jpg"]


def test_read_sample_gives_numpy_at_file_resolution(tmp_path):
    sample = VitonDataset(write_dataset(tmp_path)).read_sample(0)

    assert sample.person.shape == (HEIGHT, WIDTH, 3) and sample.person.dtype == np.uint8
    assert np.array_equal(sample.parse, parse_labels(0))
    assert set(np.unique(sample.cloth_mask).tolist()) == {0, 255}
    assert np.allclose(sample.keypoints, coco_keypoints(0))


def test_read_pair_reads_any_pair_of_the_folder(tmp_path):
    root = write_dataset(tmp_path, warp_gt=True)

    sample = read_pair(root, "000000_0.jpg", "000001_1.jpg")
    own_garment = read_pair(root, "000000_0.jpg", "000000_1.jpg")

    assert (sample.person_name, sample.cloth_name) == ("000000_0.jpg", "000001_1.jpg")
    assert np.array_equal(sample.parse, parse_labels(0))
    assert sample.warp_gt is None
    assert own_garment.warp_gt.shape == (HEIGHT, WIDTH, 3)
    assert set(np.unique(own_garment.warp_gt_mask).tolist()) == {0, 255}
    with pytest.raises(DatasetError, match="cloth/000009_1.jpg"):
        read_pair(root, "000000_0.jpg", "000009_1.jpg")


def test_jpeg_masks_are_thresholded(tmp_path):
    dataset = VitonDataset(write_dataset(tmp_path, mask_extension=".jpg"))

    assert set(np.unique(dataset.read_sample(0).cloth_mask).tolist()) == {0, 255}


def test_unpaired_pairs_file_and_warp_ground_truth(tmp_path):
    root = write_dataset(tmp_path, warp_gt=True)

    paired = VitonDataset(root, size=(64, 48))[0]
    unpaired = VitonDataset(root, pairs="pairs_unpaired.txt")[0]

    assert paired["warp_gt"].shape == (3, 64, 48) and paired["warp_gt_mask"].shape == (1, 64, 48)
    # warp-gt shows the person's own garment, not the one an unpaired item asks for.
    assert unpaired["cloth_name"] == "000001_1.jpg"
    assert "warp_gt" not in unpaired


def test_a_split_file_outside_the_dataset_is_read_from_where_it_is(tmp_path, monkeypatch):
    root = write_dataset(tmp_path / "data")
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "val.txt").write_text("000001_0.jpg 000001_1.jpg\n")
    monkeypatch.chdir(tmp_path)

    # As `tryon train/eval --data data --pairs splits/val.txt` pass it: relative to here.
    dataset = VitonDataset(root, pairs="splits/val.txt", size=(64, 48))

    assert len(dataset) == 1 and dataset[0]["person_name"] == "000001_0.jpg"
    assert len(VitonDataset(root, pairs="pairs.txt")) > 1  # inside the dataset still wins


@pytest.mark.parametrize("mode", ["P", "L", "RGB"])
def test_palette_greyscale_and_rgb_parse_maps_give_the_labels(tmp_path, mode):
    path = tmp_path / "parse.png"
    labels = parse_labels(19)
    write_parse(path, labels, mode)

    assert np.array_equal(read_parse(path), labels)


def test_rgb_parse_with_viton_palette_colours_maps_to_nearest_label(tmp_path):
    path = tmp_path / "parse.png"
    viton_colours = np.array([[(0, 0, 0), (254, 85, 0), (0, 0, 254), (0, 254, 254)]], np.uint8)
    Image.fromarray(viton_colours).save(path)

    assert read_parse(path).tolist() == [[0, UPPER_CLOTHES, FACE, 15]]


def test_parse_labels_above_19_name_the_file(tmp_path):
    path = tmp_path / "000000_0.png"
    labels = parse_labels(0)
    labels[5, 5] = 25
    Image.fromarray(labels).save(path)

    with pytest.raises(DatasetError, match=r"000000_0.png: labels \[25\] are not LIP labels"):
        read_parse(path)


def test_viton_hd_neck_label_is_read_as_background(tmp_path):
    root = write_dataset(tmp_path, parse_folder="image-parse-v3", pose_folder="pose")
    labels = parse_labels(0)
    labels[8:10, 10:14] = 10  # VITON-HD's neck
    write_parse(root / "image-parse-v3" / "000000_0.png", labels, "P")

    parse = VitonDataset(root).read_sample(0).parse

    assert parse[8, 10] == 0 and parse[12, 10] == UPPER_CLOTHES


def test_body25_keypoints_are_converted_to_coco18(tmp_path):
    path = tmp_path / "a_keypoints.json"
    body25 = np.zeros((25, 3), dtype=np.float32)
    body25[:, 0] = np.arange(25)
    body25[:, 2] = 1
    write_pose(path, body25)

    keypoints = read_keypoints(path)

    assert keypoints[:, 0].tolist() == list(BODY25_TO_COCO18)
    assert keypoints[8, 0] == 9  # COCO's right hip is BODY_25's 9 (8 is the mid-hip)


def test_old_pose_keypoints_key(tmp_path):
    path = tmp_path / "a_keypoints.json"
    write_pose(path, coco_keypoints(3), key="pose_keypoints")

    assert np.allclose(read_keypoints(path), coco_keypoints(3))


def test_no_people_gives_zero_confidence(tmp_path):
    path = tmp_path / "a_keypoints.json"
    path.write_text(json.dumps({"version": 1.0, "people": []}))

    assert read_keypoints(path).tolist() == np.zeros((18, 3)).tolist()


def test_the_most_confident_person_is_taken(tmp_path):
    path = tmp_path / "a_keypoints.json"
    faint, clear = coco_keypoints(0), coco_keypoints(7)
    faint[:, 2] = 0.1
    people = [{"pose_keypoints_2d": k.reshape(-1).tolist()} for k in (faint, clear)]
    path.write_text(json.dumps({"people": people}))

    assert np.allclose(read_keypoints(path), clear)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"people": [{"pose_keypoints_2d": [1, 2, 3]}]}', "expected 54 or 75 numbers in "),
        ("{not json", "not a readable JSON file"),
        ('{"people": [{"face_keypoints": []}]}', "has no pose_keypoints_2d or pose_keypoints"),
        ('{"people": [{"pose_keypoints": ["a", "b"]}]}', "must be a list of numbers"),
        ("[1, 2]", "expected OpenPose JSON"),
        (json.dumps({"people": [{"pose_keypoints_2d": [float("nan")] * 54}]}), "NaN"),
    ],
)
def test_malformed_keypoint_files_name_the_file_and_the_problem(tmp_path, content, message):
    path = tmp_path / "pose" / "000003_0_keypoints.json"
    path.parent.mkdir()
    path.write_text(content)

    with pytest.raises(DatasetError, match="pose/000003_0_keypoints.json: ") as raised:
        read_keypoints(path)
    assert message in str(raised.value)


def test_wrong_keypoint_count_says_how_many(tmp_path):
    path = tmp_path / "000003_0_keypoints.json"
    path.write_text(json.dumps({"people": [{"pose_keypoints_2d": [0.0] * 51}]}))

    with pytest.raises(
        DatasetError, match="expected 54 or 75 numbers in pose_keypoints_2d, found 51"
    ):
        read_keypoints(path)


def test_missing_folders_are_listed_with_the_expected_layout(tmp_path):
    root = write_dataset(tmp_path)
    (root / "cloth-mask").rename(root / "masks")
    (root / "openpose_json").rename(root / "keypoints")

    with pytest.raises(DatasetError) as raised:
        VitonDataset(root)
    message = str(raised.value)
    assert "cloth-mask/" in message and "openpose_json/ or pose/" in message
    assert "expected the VITON layout" in message


def test_missing_files_are_listed_on_construction(tmp_path):
    root = write_dataset(tmp_path, count=3)
    (root / "image-parse" / "000001_0.png").unlink()
    (root / "cloth" / "000002_1.jpg").unlink()

    with pytest.raises(DatasetError, match="missing 2 files") as raised:
        VitonDataset(root)
    assert "image-parse/000001_0.png (pair 2 of pairs.txt)" in str(raised.value)
    assert "cloth/000002_1.jpg (pair 3 of pairs.txt)" in str(raised.value)


def test_malformed_pairs_file_names_the_line(tmp_path):
    root = write_dataset(tmp_path)
    (root / "pairs.txt").write_text("000000_0.jpg 000000_1.jpg\n\n000001_0.jpg\n")

    with pytest.raises(DatasetError, match="pairs.txt line 3: expected two file names"):
        VitonDataset(root)


def test_missing_pairs_file_is_named(tmp_path):
    with pytest.raises(DatasetError, match="pairs_test.txt does not exist"):
        VitonDataset(write_dataset(tmp_path), pairs="pairs_test.txt")


def test_truncated_photo_names_the_file_when_read(tmp_path):
    root = write_dataset(tmp_path)
    photo = root / "image" / "000001_0.jpg"
    photo.write_bytes(photo.read_bytes()[:200])
    dataset = VitonDataset(root)

    dataset[0]
    with pytest.raises(DatasetError, match="image/000001_0.jpg is truncated"):
        dataset[1]


def test_parse_of_another_size_than_the_photo_is_refused(tmp_path):
    root = write_dataset(tmp_path)
    write_parse(root / "image-parse" / "000000_0.png", np.zeros((16, 12), np.uint8), "P")

    with pytest.raises(DatasetError, match="000000_0.png: is 12x16 but .*000000_0.jpg is 24x32"):
        VitonDataset(root)[0]


@pytest.mark.skipif(not REAL_VITON.is_dir(), reason="the real VITON data is not on this machine")
def test_reads_the_real_viton_training_split():
    dataset = VitonDataset(REAL_VITON, size=(128, 96))

    batch = next(iter(DataLoader(dataset, batch_size=2)))

    assert len(dataset) > 1000
    assert batch["person"].shape == batch["cloth"].shape == (2, 3, 128, 96)
    assert batch["parse"].max() <= 19 and (batch["parse"] == UPPER_CLOTHES).any()
    assert 0.05 < batch["cloth_mask"].mean() < 0.9
    visible = batch["keypoints"][..., 2] > 0
    assert visible.sum() > 20
    assert (batch["keypoints"][..., 0][visible] < 96).all()
    assert (batch["keypoints"][..., 1][visible] < 128).all()
