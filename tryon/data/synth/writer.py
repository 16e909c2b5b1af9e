"""Writing synthetic samples to disk in the VITON layout, in parallel, reproducibly.

Sample i's files depend only on (seed, i, size): `--n 10` writes byte for byte the first
ten samples of `--n 1000`, with any number of workers.
"""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.pool
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from tryon import labels as L
from tryon.data.synth.sample import SynthSample, generate_sample, stream
from tryon.errors import InvalidInputError

FOLDERS = (
    "image",
    "cloth",
    "cloth-mask",
    "image-parse",
    "openpose_json",
    "warp-gt",
    "warp-gt-mask",
)
CAMERA_STREAM = 3


def person_name(index: int) -> str:
    return f"{index:06d}_0"


def cloth_name(index: int) -> str:
    return f"{index:06d}_1"


def _write_jpeg(path: Path, rgb: np.ndarray, quality: int) -> None:
    ok, data = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise OSError(f"could not encode {path}")
    path.write_bytes(data.tobytes())


def _write_png(path: Path, gray: np.ndarray) -> None:
    ok, data = cv2.imencode(".png", gray)
    if not ok:
        raise OSError(f"could not encode {path}")
    path.write_bytes(data.tobytes())


def write_parse(path: Path, parse: np.ndarray) -> None:
    """Save a label map `(H, W)` uint8 as an 8-bit PNG with the LIP palette."""
    image = Image.fromarray(parse, mode="P")
    image.putpalette(L.palette_bytes())
    image.save(path, optimize=False)


def openpose_json(keypoints: np.ndarray) -> dict:
    """OpenPose's JSON for one person from keypoints `(18, 3)` (x, y, confidence)."""
    flat = [round(float(v), 3) for v in keypoints.reshape(-1)]
    return {"version": 1.3, "people": [{"person_id": [-1], "pose_keypoints_2d": flat}]}


def write_sample(out: Path, seed: int, index: int, size: tuple[int, int]) -> SynthSample:
    """Render sample `index` and write its seven files under `out`."""
    sample = generate_sample(seed, index, size)
    person, cloth = person_name(index), cloth_name(index)
    quality = int(stream(seed, index, CAMERA_STREAM).integers(72, 96))
    _write_jpeg(out / "image" / f"{person}.jpg", sample.person, quality)
    _write_jpeg(out / "cloth" / f"{cloth}.jpg", sample.cloth, 95)
    _write_png(out / "cloth-mask" / f"{cloth}.png", sample.cloth_mask)
    write_parse(out / "image-parse" / f"{person}.png", sample.parse)
    (out / "openpose_json" / f"{person}_keypoints.json").write_text(
        json.dumps(openpose_json(sample.keypoints))
    )
    _write_jpeg(out / "warp-gt" / f"{person}.jpg", sample.warp_gt, 95)
    _write_png(out / "warp-gt-mask" / f"{person}.png", sample.warp_gt_mask)
    return sample


def unpaired_order(seed: int, n: int) -> np.ndarray:
    """For each person, the index of another sample whose garment they try on."""
    if n < 2:
        return np.arange(n)
    shift = np.random.default_rng([seed, n, 7]).permutation(n)
    # Rotating a random cycle by one gives every person a different garment.
    order = np.empty(n, np.int64)
    order[shift] = np.roll(shift, -1)
    return order


def pair_line(person: int, cloth: int) -> str:
    """A pairs-file line: sample `person`'s photo with sample `cloth`'s garment."""
    return f"{person_name(person)}.jpg {cloth_name(cloth)}.jpg"


def write_pairs(out: Path, seed: int, n: int) -> None:
    """`pairs.txt` (each person with the garment they wear) and `pairs_unpaired.txt`."""
    paired = [pair_line(i, i) for i in range(n)]
    other = unpaired_order(seed, n)
    unpaired = [pair_line(i, int(other[i])) for i in range(n)]
    (out / "pairs.txt").write_text("\n".join(paired) + "\n")
    (out / "pairs_unpaired.txt").write_text("\n".join(unpaired) + "\n")


def prepare_folder(out: Path) -> None:
    """Create the layout's folders."""
    for folder in FOLDERS:
        (out / folder).mkdir(parents=True, exist_ok=True)


def check_request(out: Path, n: int, size: tuple[int, int], overwrite: bool) -> None:
    """Reject a bad request before any work starts, with the fix in the message."""
    if n < 1:
        raise InvalidInputError(f"--n must be at least 1, got {n}")
    if size[0] % 16 or size[1] % 16 or min(size) < 64:
        raise InvalidInputError(
            f"--size {size[0]}x{size[1]}: height and width must be multiples of 16 and at "
            "least 64 (for example 256x192 or 512x384)"
        )
    if (out / "pairs.txt").exists() and not overwrite:
        raise InvalidInputError(
            f"{out} already holds a dataset (pairs.txt exists); choose another --out or pass "
            "--overwrite to replace it"
        )
    if out.exists() and not out.is_dir():
        raise InvalidInputError(f"{out} exists and is not a folder; choose another --out")


def write_sample_job(args: tuple[str, int, int, tuple[int, int]]) -> int:
    """`write_sample` for a worker process: `(out, seed, index, size)` in, `index` out."""
    out, seed, index, size = args
    write_sample(Path(out), seed, index, size)
    return index


def write_dataset(
    out: Path,
    n: int,
    seed: int,
    size: tuple[int, int] = (256, 192),
    workers: int = 1,
    overwrite: bool = False,
    on_sample: Callable[[int], None] | None = None,
) -> None:
    """Write `n` samples and the pairs files in the VITON layout under `out`.

    Args:
        on_sample: called with each finished sample's index (for progress bars).
    """
    check_request(out, n, size, overwrite)
    prepare_folder(out)
    jobs = [(str(out), seed, i, size) for i in range(n)]
    for index in _run(jobs, workers):
        if on_sample is not None:
            on_sample(index)
    write_pairs(out, seed, n)
    meta = {"generator": "tryon.data.synth", "seed": seed, "n": n, "size": list(size)}
    (out / "synth.json").write_text(json.dumps(meta, indent=2) + "\n")


def _run(jobs: list, workers: int) -> Iterator[int]:
    if workers <= 1:
        yield from map(write_sample_job, jobs)
        return
    with sample_pool(workers) as pool:
        yield from pool.imap_unordered(write_sample_job, jobs, chunksize=4)


def sample_pool(workers: int) -> multiprocessing.pool.Pool:
    """Worker processes for `write_sample_job`; leaving its `with` block ends them.

    Spawned, not forked: a fork of a process whose torch or OpenCV threads are running
    can deadlock in the child. One OpenCV thread per process: they use every core already.
    """
    return multiprocessing.get_context("spawn").Pool(
        workers, initializer=cv2.setNumThreads, initargs=(1,)
    )
