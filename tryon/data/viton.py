"""Reader for try-on datasets in the VITON / VITON-HD folder layout.

The public datasets, our synthetic generator and a store's own photos all use it::

    root/
      image/                          person photos            <person>.jpg
      cloth/                          in-shop garment photos   <cloth>.jpg
      cloth-mask/                     garment masks (grey, threshold 128)
      image-parse/ or image-parse-v3/ parse maps, LIP labels (palette, grey or RGB PNG)
      openpose_json/ or pose/         <person stem>_keypoints.json (OpenPose)
      pairs.txt                       "person.jpg cloth.jpg" per line (or another pairs file)
      warp-gt/, warp-gt-mask/         optional: the person's own garment warped onto them

Files are matched by stem, whatever their extension (.jpg, .jpeg or .png), so a mask
`cloth-mask/000000_1.png` belongs to `cloth/000000_1.jpg`. `VitonDataset` gives tensors at
the model resolution (for training); its `read_sample(i)`, and `read_pair(root, person,
cloth)` for one-off reads, give numpy arrays at the files' resolution (for evaluation).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from tryon.data.augment import Augmentation, augment_item
from tryon.errors import DatasetError, InvalidInputError
from tryon.imaging import (
    decode_image,
    image_to_tensor,
    mask_to_tensor,
    open_image,
    resize_image,
    resize_labels,
    to_rgb,
)
from tryon.labels import (
    BACKGROUND,
    BODY25_TO_COCO18,
    NUM_KEYPOINTS,
    NUM_PARSE_LABELS,
    PARSE_PALETTE,
)
from tryon.representation import scale_keypoints

DEFAULT_SIZE: tuple[int, int] = (256, 192)
DEFAULT_PAIRS = "pairs.txt"
IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg")
MASK_THRESHOLD = 128

# Each role's folder, by the names the public datasets use (first found wins).
REQUIRED_FOLDERS: dict[str, tuple[str, ...]] = {
    "image": ("image",),
    "cloth": ("cloth",),
    "cloth_mask": ("cloth-mask",),
    "parse": ("image-parse", "image-parse-v3"),
    "pose": ("openpose_json", "pose"),
}
OPTIONAL_FOLDERS: dict[str, tuple[str, ...]] = {
    "warp_gt": ("warp-gt",),
    "warp_gt_mask": ("warp-gt-mask",),
}
# VITON-HD's image-parse-v3 replaces LIP's "jumpsuits" (10) by a neck label; LIP and VITON
# leave the neck as background, and so does this reader.
VITON_HD_PARSE_FOLDER = "image-parse-v3"
VITON_HD_NECK_LABEL = 10

EXPECTED_LAYOUT = """expected the VITON layout:
  image/                           person photos (<person>.jpg)
  cloth/                           garment photos (<cloth>.jpg)
  cloth-mask/                      garment masks, same stem as the garment (.jpg or .png)
  image-parse/ or image-parse-v3/  parse maps with LIP labels (<person>.png)
  openpose_json/ or pose/          OpenPose keypoints (<person>_keypoints.json)
  pairs.txt                        one "person.jpg cloth.jpg" pair per line"""

_MAX_LISTED_PROBLEMS = 10
_KEYPOINT_KEYS = ("pose_keypoints_2d", "pose_keypoints")
_COCO18_NUMBERS = 3 * NUM_KEYPOINTS
_BODY25_NUMBERS = 3 * 25


@dataclass(frozen=True)
class VitonSample:
    """One dataset item as numpy arrays at the resolution of its files.

    person: `(H, W, 3)` uint8 RGB. cloth: `(Hc, Wc, 3)` uint8 RGB. cloth_mask: `(Hc, Wc)`
    uint8, 0 or 255. parse: `(H, W)` uint8 LIP labels 0-19. keypoints: `(18, 3)` float32,
    COCO-18 (x, y, confidence), x and y in pixels of `person` (pixel centres at integer
    coordinates), missing keypoints (0, 0, 0). warp_gt `(H, W, 3)` / warp_gt_mask `(H, W)`
    (0 or 255): the person's own garment warped onto them, when the dataset has it.
    """

    person_name: str
    cloth_name: str
    person: np.ndarray
    cloth: np.ndarray
    cloth_mask: np.ndarray
    parse: np.ndarray
    keypoints: np.ndarray
    warp_gt: np.ndarray | None = None
    warp_gt_mask: np.ndarray | None = None


@dataclass(frozen=True)
class VitonItemFiles:
    """The files one (person, garment) pair is read from."""

    person_name: str
    cloth_name: str
    person: Path
    cloth: Path
    cloth_mask: Path
    parse: Path
    keypoints: Path
    warp_gt: Path | None = None
    warp_gt_mask: Path | None = None


@dataclass(frozen=True)
class VitonLayout:
    """The folders of a VITON-layout dataset and the files they hold, indexed by stem."""

    root: Path
    folders: dict[str, Path]
    files: dict[str, dict[str, Path]]

    @classmethod
    def find(cls, root: str | Path) -> VitonLayout:
        """Locate the folders under `root`; `DatasetError` lists the ones that are missing."""
        root = Path(root)
        if not root.is_dir():
            raise DatasetError(f"dataset folder {root} does not exist; {EXPECTED_LAYOUT}")
        folders, missing = {}, []
        for role, names in (REQUIRED_FOLDERS | OPTIONAL_FOLDERS).items():
            folder = next((root / name for name in names if (root / name).is_dir()), None)
            if folder is not None:
                folders[role] = folder
            elif role in REQUIRED_FOLDERS:
                missing.append(" or ".join(f"{name}/" for name in names))
        if missing:
            raise DatasetError(
                f"dataset {root} lacks the folders {', '.join(missing)}; {EXPECTED_LAYOUT}"
            )
        files = {role: _index_folder(folder) for role, folder in folders.items()}
        return cls(root=root, folders=folders, files=files)

    @property
    def has_warp_gt(self) -> bool:
        return "warp_gt" in self.folders and "warp_gt_mask" in self.folders

    @property
    def neck_label(self) -> int | None:
        """The label the parse maps use for the neck (VITON-HD's), or None (LIP)."""
        is_viton_hd = self.folders["parse"].name == VITON_HD_PARSE_FOLDER
        return VITON_HD_NECK_LABEL if is_viton_hd else None

    def item_files(
        self, person_name: str, cloth_name: str, *, with_warp_gt: bool = False
    ) -> tuple[VitonItemFiles | None, list[str]]:
        """The files of one pair, or None and the list of missing files (root-relative)."""
        person_stem = Path(person_name).stem
        wanted = {
            "person": ("image", person_name),
            "cloth": ("cloth", cloth_name),
            "cloth_mask": ("cloth_mask", cloth_name),
            "parse": ("parse", person_stem + ".png"),
            "keypoints": ("pose", f"{person_stem}_keypoints.json"),
        }
        if with_warp_gt:
            wanted["warp_gt"] = ("warp_gt", person_stem + ".jpg")
            wanted["warp_gt_mask"] = ("warp_gt_mask", person_stem + ".png")
        found, missing = {}, []
        for field, (role, name) in wanted.items():
            path = self._lookup(role, name)
            if path is None:
                missing.append(f"{self.folders[role].name}/{name}")
            found[field] = path
        if missing:
            return None, missing
        return VitonItemFiles(person_name=person_name, cloth_name=cloth_name, **found), []

    def _lookup(self, role: str, name: str) -> Path | None:
        index = self.files[role]
        if role == "pose":
            return index.get(name)
        return index.get(name) or index.get(Path(name).stem)


def resolve_pairs_path(root: Path, pairs: str | Path) -> Path:
    """Where a pairs file given as `pairs` is: inside the dataset `root` when it is there,
    else the path itself (absolute, or relative to the working directory)."""
    inside = root / pairs
    return Path(pairs) if not inside.exists() and Path(pairs).is_file() else inside


def read_pairs(path: str | Path) -> list[tuple[str, str]]:
    """Read a pairs file: one `person.jpg cloth.jpg` per line, blank lines ignored."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError as error:
        raise DatasetError(f"pairs file {path} does not exist; {EXPECTED_LAYOUT}") from error
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetError(f"{path}: cannot be read as text ({error})") from error
    pairs = []
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise DatasetError(
                f"{path} line {number}: expected two file names 'person.jpg cloth.jpg', "
                f"found {line.strip()!r}"
            )
        pairs.append((fields[0], fields[1]))
    if not pairs:
        raise DatasetError(f"{path} lists no pairs; write one 'person.jpg cloth.jpg' per line")
    return pairs


def read_rgb(path: Path) -> np.ndarray:
    """Read a photo as RGB `(H, W, 3)` uint8."""
    try:
        return decode_image(path)
    except InvalidInputError as error:
        raise DatasetError(str(error)) from error


def read_mask(path: Path) -> np.ndarray:
    """Read a mask (grey, RGB or palette; JPEG or PNG) as `(H, W)` uint8, 0 or 255.

    Thresholded at 128 because JPEG masks (as VITON's) hold compression noise.
    """
    grey = np.asarray(to_rgb(_open(path)).convert("L"))
    return np.where(grey >= MASK_THRESHOLD, 255, 0).astype(np.uint8)


def read_parse(path: Path, *, neck_label: int | None = None) -> np.ndarray:
    """Read a parse map as `(H, W)` uint8 LIP labels 0-19.

    Palette PNGs give the palette index, greyscale PNGs the grey value, RGB images the
    index of the nearest LIP palette colour. `neck_label` (VITON-HD's 10) is read as
    background, as LIP labels the neck.
    """
    image = _open(path)
    if image.mode in ("P", "L", "I", "I;16"):
        labels = np.asarray(image).astype(np.int64)
    elif image.mode in ("RGB", "RGBA"):
        labels = _nearest_palette_labels(np.asarray(image.convert("RGB")))
    else:
        raise DatasetError(
            f"{path}: parse maps must be palette, greyscale or RGB images, found mode {image.mode}"
        )
    _check_labels(labels, path)
    if neck_label is not None:
        labels = np.where(labels == neck_label, BACKGROUND, labels)
    return labels.astype(np.uint8)


def read_keypoints(path: Path) -> np.ndarray:
    """Read OpenPose JSON as COCO-18 keypoints `(18, 3)` float32 (x, y, confidence).

    Accepts `pose_keypoints_2d` and the older `pose_keypoints`, with 18 (COCO) or 25
    (BODY_25, converted) points. With several people, the most confident one is taken;
    with none, all keypoints are (0, 0, 0), as OpenPose writes the ones it did not find.
    """
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError as error:
        raise DatasetError(f"{path}: file does not exist") from error
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DatasetError(f"{path}: not a readable JSON file ({error})") from error
    people = document.get("people") if isinstance(document, dict) else None
    if not isinstance(people, list):
        raise DatasetError(f'{path}: expected OpenPose JSON {{"people": [...]}}')
    if not people:
        return np.zeros((NUM_KEYPOINTS, 3), dtype=np.float32)
    poses = [_person_keypoints(person, path, index) for index, person in enumerate(people)]
    return max(poses, key=lambda pose: float(pose[:, 2].sum()))


def read_sample(files: VitonItemFiles, *, neck_label: int | None = None) -> VitonSample:
    """Read one pair's files as numpy arrays (see `VitonSample`); checks their sizes agree."""
    sample = VitonSample(
        person_name=files.person_name,
        cloth_name=files.cloth_name,
        person=read_rgb(files.person),
        cloth=read_rgb(files.cloth),
        cloth_mask=read_mask(files.cloth_mask),
        parse=read_parse(files.parse, neck_label=neck_label),
        keypoints=read_keypoints(files.keypoints),
        warp_gt=read_rgb(files.warp_gt) if files.warp_gt else None,
        warp_gt_mask=read_mask(files.warp_gt_mask) if files.warp_gt_mask else None,
    )
    _check_same_size(files.person, sample.person, files.parse, sample.parse)
    _check_same_size(files.cloth, sample.cloth, files.cloth_mask, sample.cloth_mask)
    if files.warp_gt and files.warp_gt_mask:
        _check_same_size(files.person, sample.person, files.warp_gt, sample.warp_gt)
        _check_same_size(files.person, sample.person, files.warp_gt_mask, sample.warp_gt_mask)
    return sample


def read_pair(root: str | Path, person_name: str, cloth_name: str) -> VitonSample:
    """Read one (person, garment) pair of the dataset at `root`, for one-off reads.

    The warp ground truth comes with it when the pair is listed in `pairs.txt`. It indexes
    the folders on every call; to go through a dataset use `VitonDataset.read_sample`.
    """
    layout = VitonLayout.find(root)
    pair = [(person_name, cloth_name)]
    with_warp_gt = layout.has_warp_gt and _all_paired(layout, pair)
    files, missing = layout.item_files(person_name, cloth_name, with_warp_gt=with_warp_gt)
    if files is None:
        raise DatasetError(f"dataset {layout.root} lacks {', '.join(missing)}")
    return read_sample(files, neck_label=layout.neck_label)


def sample_to_tensors(
    sample: VitonSample, size: tuple[int, int] = DEFAULT_SIZE
) -> dict[str, torch.Tensor | str]:
    """Resize a sample to `size` (height, width) and convert it to tensors.

    Returns `person`, `cloth` `(3, H, W)` in [-1, 1] (antialiased resize); `cloth_mask`
    `(1, H, W)` in [0, 1] (soft at the edges after resizing); `parse` `(H, W)` int64
    (nearest); `keypoints` `(18, 3)` float32 (x, y in pixels of the resized person,
    confidence); `warp_gt` `(3, H, W)` and `warp_gt_mask` `(1, H, W)` when the sample has
    them; `person_name` and `cloth_name`.
    """
    person_size = sample.person.shape[:2]
    item: dict[str, torch.Tensor | str] = {
        "person": resize_image(image_to_tensor(sample.person), size)[0],
        "cloth": resize_image(image_to_tensor(sample.cloth), size)[0],
        "cloth_mask": resize_image(mask_to_tensor(sample.cloth_mask), size)[0],
        "parse": resize_labels(torch.from_numpy(sample.parse).long().unsqueeze(0), size)[0],
        "keypoints": scale_keypoints(torch.from_numpy(sample.keypoints), person_size, size),
        "person_name": sample.person_name,
        "cloth_name": sample.cloth_name,
    }
    if sample.warp_gt is not None and sample.warp_gt_mask is not None:
        item["warp_gt"] = resize_image(image_to_tensor(sample.warp_gt), size)[0]
        item["warp_gt_mask"] = resize_image(mask_to_tensor(sample.warp_gt_mask), size)[0]
    return item


class VitonDataset(Dataset):
    """The pairs of a VITON-layout dataset as tensors at the model resolution.

    root: the dataset folder. pairs: the pairs file, inside `root` or a path of its own
    (`pairs.txt` for the paired garments, e.g. `pairs_unpaired.txt` for others, or a
    split such as `docs/splits/viton/val_pairs.txt`; see `resolve_pairs_path`). size:
    (height, width) of the returned tensors, any size. Items are `sample_to_tensors`
    dicts. `warp_gt`/`warp_gt_mask` show the person's own garment, so they are returned
    only when the dataset has those folders and every pair of `pairs` is listed in the
    dataset's `pairs.txt`. augment: random flips, zoom and colour applied to each item
    (`tryon.data.augment`, for training); None or an inactive one leaves items as read.

    The whole dataset is checked on construction: a `DatasetError` lists missing folders
    or files and the expected layout; a malformed file is reported when its item is read.
    """

    def __init__(
        self,
        root: str | Path,
        pairs: str | Path = DEFAULT_PAIRS,
        size: tuple[int, int] = DEFAULT_SIZE,
        augment: Augmentation | None = None,
    ) -> None:
        self.layout = VitonLayout.find(root)
        self.augment = augment if augment is not None and augment.active else None
        self.size = (int(size[0]), int(size[1]))
        pairs_path = resolve_pairs_path(self.layout.root, pairs)
        pair_list = read_pairs(pairs_path)
        with_warp_gt = self.layout.has_warp_gt and _all_paired(self.layout, pair_list)
        self.items = _collect_item_files(self.layout, pair_list, pairs_path, with_warp_gt)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        item = sample_to_tensors(self.read_sample(index), self.size)
        return item if self.augment is None else augment_item(item, self.augment)

    def read_sample(self, index: int) -> VitonSample:
        """Item `index` as numpy arrays at the files' own resolution."""
        return read_sample(self.items[index], neck_label=self.layout.neck_label)


def _index_folder(folder: Path) -> dict[str, Path]:
    """Map each file's name and, for images, its stem to its path (.png before .jpg)."""
    index: dict[str, Path] = {}
    paths = sorted(folder.iterdir(), key=lambda p: _extension_rank(p.suffix))
    for path in paths:
        index[path.name] = path
        if path.suffix.lower() in IMAGE_EXTENSIONS:
            index.setdefault(path.stem, path)
    return index


def _extension_rank(suffix: str) -> int:
    lowered = suffix.lower()
    return IMAGE_EXTENSIONS.index(lowered) if lowered in IMAGE_EXTENSIONS else len(IMAGE_EXTENSIONS)


def _all_paired(layout: VitonLayout, pairs: list[tuple[str, str]]) -> bool:
    paired_file = layout.root / DEFAULT_PAIRS
    return paired_file.is_file() and set(pairs) <= set(read_pairs(paired_file))


def _collect_item_files(
    layout: VitonLayout, pairs: list[tuple[str, str]], pairs_path: Path, with_warp_gt: bool
) -> list[VitonItemFiles]:
    items, problems = [], []
    for number, (person_name, cloth_name) in enumerate(pairs, start=1):
        files, missing = layout.item_files(person_name, cloth_name, with_warp_gt=with_warp_gt)
        if files is None:
            problems.extend(f"{name} (pair {number} of {pairs_path.name})" for name in missing)
        else:
            items.append(files)
    if problems:
        listed = "\n  ".join(problems[:_MAX_LISTED_PROBLEMS])
        more = len(problems) - _MAX_LISTED_PROBLEMS
        tail = f"\n  ... and {more} more" if more > 0 else ""
        raise DatasetError(
            f"dataset {layout.root} is missing {len(problems)} files:\n  {listed}{tail}\n"
            f"(files are matched by stem with any of {', '.join(IMAGE_EXTENSIONS)}); "
            f"{EXPECTED_LAYOUT}"
        )
    return items


def _open(path: Path) -> Image.Image:
    try:
        return open_image(path)
    except InvalidInputError as error:
        raise DatasetError(str(error)) from error


def _nearest_palette_labels(rgb: np.ndarray) -> np.ndarray:
    """Label of each pixel of `(H, W, 3)` uint8 as the index of the nearest LIP colour."""
    colours, pixel_colour = np.unique(rgb.reshape(-1, 3), axis=0, return_inverse=True)
    palette = np.asarray(PARSE_PALETTE, dtype=np.int64)
    distances = ((colours[:, None, :].astype(np.int64) - palette[None]) ** 2).sum(axis=-1)
    return distances.argmin(axis=1)[pixel_colour.reshape(-1)].reshape(rgb.shape[:2])


def _check_labels(labels: np.ndarray, path: Path) -> None:
    invalid = np.unique(labels[(labels < 0) | (labels >= NUM_PARSE_LABELS)])
    if invalid.size:
        raise DatasetError(
            f"{path}: labels {invalid.tolist()[:10]} are not LIP labels "
            f"(0-{NUM_PARSE_LABELS - 1}); parse maps must store the label as the palette index "
            "or grey value"
        )


def _person_keypoints(person: object, path: Path, index: int) -> np.ndarray:
    key = next((k for k in _KEYPOINT_KEYS if isinstance(person, dict) and k in person), None)
    if key is None:
        raise DatasetError(f"{path}: people[{index}] has no {' or '.join(_KEYPOINT_KEYS)} list")
    try:
        values = np.asarray(person[key], dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise DatasetError(f"{path}: {key} of people[{index}] must be a list of numbers") from error
    if values.ndim != 1 or values.size not in (_COCO18_NUMBERS, _BODY25_NUMBERS):
        raise DatasetError(
            f"{path}: expected {_COCO18_NUMBERS} or {_BODY25_NUMBERS} numbers in {key}, "
            f"found {values.size}"
        )
    if not np.isfinite(values).all():
        raise DatasetError(f"{path}: {key} of people[{index}] holds NaN or infinite numbers")
    keypoints = values.reshape(-1, 3)
    if len(keypoints) == 25:
        keypoints = keypoints[list(BODY25_TO_COCO18)]
    return keypoints


def _check_same_size(path_a: Path, array_a: np.ndarray, path_b: Path, array_b: np.ndarray) -> None:
    if array_a.shape[:2] != array_b.shape[:2]:
        (height_a, width_a), (height_b, width_b) = array_a.shape[:2], array_b.shape[:2]
        raise DatasetError(
            f"{path_b}: is {width_b}x{height_b} but {path_a} is {width_a}x{height_a}; "
            "they must have the same size"
        )
