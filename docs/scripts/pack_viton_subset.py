"""Pack a random subset of VITON training pairs into a small VITON-layout folder.

A remote GPU machine that receives only a small upload (64 MiB with the working tree, on
the machines this project was lent) gets a subset: photos, garments and parse maps byte
for byte, garment masks as 1-bit PNGs (the JPEG masks thresholded at 128, as the reader
does) and poses as compact JSON (docs/training.md, "Time and hardware"). The folder must
stay out of git (research-only licence); `data/` is git-ignored:

    python docs/scripts/pack_viton_subset.py --out data/viton_pack --n 2300
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from tryon.data.viton import read_pairs


def pack(data: Path, pairs: Path, out: Path, n: int, seed: int) -> int:
    chosen = sorted(random.Random(seed).sample(read_pairs(pairs), n))
    for folder in ("image", "cloth", "cloth-mask", "image-parse", "pose"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    for person, cloth in chosen:
        person_stem, cloth_stem = Path(person).stem, Path(cloth).stem
        shutil.copyfile(data / "image" / person, out / "image" / person)
        shutil.copyfile(data / "cloth" / cloth, out / "cloth" / cloth)
        shutil.copyfile(
            data / "image-parse" / f"{person_stem}.png", out / "image-parse" / f"{person_stem}.png"
        )
        mask = np.asarray(Image.open(data / "cloth-mask" / cloth).convert("L")) >= 128
        Image.fromarray(mask).save(out / "cloth-mask" / f"{cloth_stem}.png", optimize=True)
        pose_name = f"{person_stem}_keypoints.json"
        pose = json.loads((data / "pose" / pose_name).read_text())
        people = [
            {"pose_keypoints": [round(v, 2) for v in person_pose["pose_keypoints"]]}
            for person_pose in pose["people"]
        ]
        (out / "pose" / pose_name).write_text(json.dumps({"people": people}, separators=(",", ":")))
    (out / "pairs.txt").write_text("".join(f"{p} {c}\n" for p, c in chosen))
    return len(chosen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/viton/train"))
    parser.add_argument("--pairs", type=Path, default=Path("docs/splits/viton/train_pairs.txt"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--n", type=int, default=2300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    count = pack(args.data, args.pairs, args.out, args.n, args.seed)
    print(f"packed {count} pairs into {args.out}")


if __name__ == "__main__":
    main()
