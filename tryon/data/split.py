"""Hold-out splits of a paired dataset that keep each person on one side.

Public try-on datasets (VITON, VITON-HD) label no person identities, but their photo ids
follow the shop's crawl order, so one model's photos sit in runs of neighbouring ids
(000003 and 000004 are the same woman in two tops). A random split by photo would put
the same face, hair and body in training and validation. `split_by_id_blocks` holds out
whole id ranges instead, and leaves a gap of unused ids on both sides of each held-out
range so that a run crossing the boundary cannot leak either.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

from tryon.errors import DatasetError

_LEADING_NUMBER = re.compile(r"(\d+)")


@dataclass(frozen=True)
class PairSplit:
    """Training and validation pairs; `dropped`: pairs in the gaps, used by neither."""

    train: list[tuple[str, str]]
    validation: list[tuple[str, str]]
    dropped: list[tuple[str, str]]


def photo_id(name: str) -> int:
    """The numeric id of a photo file: '000123_0.jpg' -> 123."""
    match = _LEADING_NUMBER.match(Path(name).stem)
    if match is None:
        raise DatasetError(
            f"person photo {name!r} does not start with a numeric id (as VITON's "
            "'000123_0.jpg'); an id-block split needs one"
        )
    return int(match.group(1))


def split_by_id_blocks(
    pairs: list[tuple[str, str]],
    *,
    validation_fraction: float = 0.1,
    block: int = 500,
    gap: int = 20,
    seed: int = 0,
) -> PairSplit:
    """Split `(person, garment)` pairs by ranges of person photo ids.

    Ids are cut into blocks of `block` consecutive ids; a seeded random choice of blocks
    holding about `validation_fraction` of the pairs is held out. Training pairs within
    `gap` ids of a held-out block are dropped.
    """
    if not 0.0 < validation_fraction < 1.0:
        raise DatasetError(
            f"validation fraction {validation_fraction} must lie strictly between 0 and 1"
        )
    if block < 1 or gap < 0:
        raise DatasetError(f"block ({block}) must be at least 1 and gap ({gap}) at least 0")
    ids = [photo_id(person) for person, _ in pairs]
    counts: dict[int, int] = {}
    for pair_id in ids:
        counts[pair_id // block] = counts.get(pair_id // block, 0) + 1
    blocks = sorted(counts)
    random.Random(seed).shuffle(blocks)
    held: set[int] = set()
    target = validation_fraction * len(pairs)
    for candidate in blocks:
        if sum(counts[b] for b in held) >= target:
            break
        held.add(candidate)
    if len(held) == len(counts):
        raise DatasetError(
            f"all {len(counts)} id blocks would be held out; use a smaller --block than "
            f"{block} or a smaller validation fraction"
        )

    def near_held(pair_id: int) -> bool:
        return any((pair_id + offset) // block in held for offset in (-gap, gap))

    train, validation, dropped = [], [], []
    for pair, pair_id in zip(pairs, ids, strict=True):
        if pair_id // block in held:
            validation.append(pair)
        elif near_held(pair_id):
            dropped.append(pair)
        else:
            train.append(pair)
    return PairSplit(train, validation, dropped)


def write_pairs(path: Path, pairs: list[tuple[str, str]]) -> None:
    """Write a pairs file, one 'person.jpg cloth.jpg' per line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{person} {cloth}\n" for person, cloth in pairs))
