"""Hold-out splits of a paired dataset that keep each person (and garment) on one side.

Public try-on datasets (VITON, VITON-HD) label no person identities, but their photo ids
follow the shop's crawl order, so one model's photos sit in runs of neighbouring ids
(000003 and 000004 are the same woman in two tops). A random split by photo would put
the same face, hair and body in training and validation. `split_by_id_blocks` holds out
whole id ranges instead, and leaves a gap of unused ids on both sides of each held-out
range so that a run crossing the boundary cannot leak either.

`split_by_groups` holds out by person and by garment: photos are grouped as
near-duplicates by a perceptual hash (`tryon.data.phash`), and a validation pair shares
neither its person group nor its garment group with any training pair, so the held-out
score is one on people and garments the networks never saw (the same photo re-encoded
under another name included). Pairs linked through shared groups form components that go
to one side whole; where one component is too large for that, it is cut by person groups
and the pairs that would straddle the cut are dropped.
"""

from __future__ import annotations

import bisect
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tryon.data.phash import hash_files, near_duplicate_groups
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
    _check_fraction(validation_fraction)
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


# What `split_by_groups` holds out by, and which photo of a pair (0 person, 1 garment)
# each kind groups; a component too large to go to a side whole is cut by the first kind.
GROUP_KINDS = ("id-block", "person", "garment")
_PHOTO_OF_KIND = {"id-block": 0, "person": 0, "garment": 1}
_FOLDER_OF_KIND = {"person": "image", "garment": "cloth"}


@dataclass(frozen=True)
class DuplicateGroups:
    """Near-duplicate groups of one kind of photo: `photos` hashed, `groups` in all,
    `duplicate_groups` of two photos or more holding `duplicated_photos`, the `largest`."""

    photos: int
    groups: int
    duplicate_groups: int
    duplicated_photos: int
    largest: int


@dataclass(frozen=True)
class GroupSplit:
    """A split by near-duplicate groups: the pairs (`split.dropped`: pairs that would
    share a group with the other side), the groups of each kind held out by, and the
    components of pairs linked through shared groups (`cut`: pairs in the one component
    too large to go to a side whole, 0 when none was cut)."""

    split: PairSplit
    groups: dict[str, DuplicateGroups]
    components: int
    largest_component: int
    cut: int


def split_pairs_by(
    root: Path,
    pairs: list[tuple[str, str]],
    by: list[str],
    *,
    validation_fraction: float = 0.1,
    seed: int = 0,
    block: int = 500,
    gap: int = 20,
    phash_distance: int = 6,
    on_hashed: Callable[[], None] | None = None,
) -> GroupSplit:
    """Hash the photos `by` names ("person", "garment") and split the `pairs` of the
    dataset at `root` by those near-duplicate groups and, with "id-block", by id blocks
    (see `split_by_groups`). `on_hashed` is called after each photo hashed."""
    unknown = sorted(set(by) - set(GROUP_KINDS))
    if unknown or not by:
        raise DatasetError(
            f"cannot split by {', '.join(unknown) or 'nothing'}; choose from "
            f"{', '.join(GROUP_KINDS)}"
        )
    groups = {
        kind: group_photos(root, pairs, kind, phash_distance, on_hashed)
        for kind in _FOLDER_OF_KIND
        if kind in by
    }
    if "id-block" in by:
        groups["id-block"] = id_block_groups(pairs, block)
    return split_by_groups(
        pairs, groups, validation_fraction=validation_fraction, seed=seed, gap=gap
    )


def group_photos(
    root: Path,
    pairs: list[tuple[str, str]],
    kind: str,
    max_distance: int,
    on_hashed: Callable[[], None] | None = None,
) -> dict[str, int]:
    """Near-duplicate group of each `kind` ("person" or "garment") photo the `pairs` of
    the dataset at `root` name: photos whose DCT hashes differ in at most `max_distance`
    of 64 bits share one (transitively). `on_hashed` is called after each photo."""
    from tryon.data.viton import VitonLayout

    if kind not in _FOLDER_OF_KIND:
        raise DatasetError(f"cannot hash {kind!r} photos; choose from person, garment")
    names = sorted({pair[_PHOTO_OF_KIND[kind]] for pair in pairs})
    index = VitonLayout.find(root).files[_FOLDER_OF_KIND[kind]]
    paths = [index.get(name) or index.get(Path(name).stem) for name in names]
    missing = [name for name, path in zip(names, paths, strict=True) if path is None]
    if missing:
        raise DatasetError(
            f"{len(missing)} {kind} photos of the pairs are not in {root}/"
            f"{_FOLDER_OF_KIND[kind]}/ (e.g. {missing[0]}); split pairs of this dataset"
        )
    groups = near_duplicate_groups(hash_files(paths, on_hashed), max_distance)
    return dict(zip(names, groups.tolist(), strict=True))


def id_block_groups(pairs: list[tuple[str, str]], block: int) -> dict[str, int]:
    """The id block of each person photo of `pairs` (ids `block` at a time), as a group:
    VITON's neighbouring ids are often one model in several tops."""
    if block < 1:
        raise DatasetError(f"block ({block}) must be at least 1")
    return {person: photo_id(person) // block for person, _ in pairs}


def split_by_groups(
    pairs: list[tuple[str, str]],
    groups: dict[str, dict[str, int]],
    *,
    validation_fraction: float = 0.1,
    seed: int = 0,
    gap: int = 0,
) -> GroupSplit:
    """Split `(person, garment)` pairs so that no group of any kind is on both sides.

    `groups` maps kinds ("person" and "garment": near-duplicate groups of those photos,
    `group_photos`; "id-block": `id_block_groups`) to each photo's group; a kind left out
    does not constrain the split. With "id-block", training pairs within `gap` ids of a
    held-out photo are dropped too, as in `split_by_id_blocks`.

    Pairs sharing a group are linked; the linked components, in a seeded random order,
    are held out whole while they fit in about `validation_fraction` of the pairs. If
    that leaves the validation side short because a component is too large, the largest
    is cut: its groups of the first kind (id blocks, else people, else garments), in a
    seeded order, are held out with the other groups their pairs have until the side is
    full, and its pairs with some groups held out and some not are dropped.
    """
    _check_fraction(validation_fraction)
    unknown = sorted(set(groups) - set(GROUP_KINDS))
    if unknown or not groups:
        raise DatasetError(
            f"cannot group by {', '.join(unknown) or 'nothing'}; choose from "
            f"{', '.join(GROUP_KINDS)}"
        )
    keys = [_pair_groups(pair, groups) for pair in pairs]
    component = _linked_components(keys)
    sizes = np.bincount(component)
    order = np.random.default_rng(seed).permutation(len(sizes))
    target = round(validation_fraction * len(pairs))
    held_components: set[int] = set()
    held = 0
    for candidate in order.tolist():
        if held + sizes[candidate] <= target:
            held_components.add(candidate)
            held += int(sizes[candidate])
    side = ["validation" if c in held_components else "train" for c in component.tolist()]
    cut = 0
    untaken = [c for c in range(len(sizes)) if c not in held_components]
    if held < target and untaken:
        largest = max(untaken, key=lambda c: int(sizes[c]))
        members = np.nonzero(component == largest)[0].tolist()
        cut = len(members)
        for index, where in _cut_component(members, keys, target - held, seed).items():
            side[index] = where
    if "id-block" in groups and gap > 0:
        _drop_near_held(pairs, side, gap)
    sides: dict[str, list[tuple[str, str]]] = {"train": [], "validation": [], "dropped": []}
    for pair, where in zip(pairs, side, strict=True):
        sides[where].append(pair)
    if not sides["validation"] or not sides["train"]:
        raise DatasetError(
            f"the {len(pairs)} pairs form {len(sizes)} linked groups that cannot be split "
            f"about {validation_fraction:g} to validation; use a smaller --phash-distance "
            "or hold out by fewer kinds (--by person)"
        )
    return GroupSplit(
        split=PairSplit(sides["train"], sides["validation"], sides["dropped"]),
        groups={kind: _describe_groups(groups[kind]) for kind in GROUP_KINDS if kind in groups},
        components=len(sizes),
        largest_component=int(sizes.max()),
        cut=cut,
    )


def write_pairs(path: Path, pairs: list[tuple[str, str]]) -> None:
    """Write a pairs file, one 'person.jpg cloth.jpg' per line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{person} {cloth}\n" for person, cloth in pairs))


def _check_fraction(validation_fraction: float) -> None:
    if not 0.0 < validation_fraction < 1.0:
        raise DatasetError(
            f"validation fraction {validation_fraction} must lie strictly between 0 and 1"
        )


def _drop_near_held(pairs: list[tuple[str, str]], side: list[str], gap: int) -> None:
    """Mark training pairs within `gap` ids of a validation pair's person as dropped."""
    held = sorted(
        photo_id(p) for (p, _), where in zip(pairs, side, strict=True) if where == "validation"
    )
    for index, (person, _) in enumerate(pairs):
        if side[index] == "train":
            pair_id = photo_id(person)
            nearest = bisect.bisect_left(held, pair_id - gap)
            if nearest < len(held) and held[nearest] <= pair_id + gap:
                side[index] = "dropped"


def _pair_groups(pair: tuple[str, str], groups: dict[str, dict[str, int]]) -> list[tuple]:
    """The groups one pair belongs to, as hashable nodes ("person", 3), ("garment", 7),
    in the order of `GROUP_KINDS`."""
    nodes = []
    for kind in GROUP_KINDS:
        if kind in groups:
            photo = pair[_PHOTO_OF_KIND[kind]]
            if photo not in groups[kind]:
                raise DatasetError(f"{kind} photo {photo} has no near-duplicate group")
            nodes.append((kind, groups[kind][photo]))
    return nodes


def _linked_components(keys: list[list[tuple]]) -> np.ndarray:
    """`(N,)` component number of each pair: pairs sharing a group node are linked."""
    parent: dict[tuple, tuple] = {}

    def root(node: tuple) -> tuple:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for nodes in keys:
        for node in nodes[1:]:
            a, b = root(nodes[0]), root(node)
            if a != b:
                parent[b] = a
    numbering: dict[tuple, int] = {}
    return np.array(
        [numbering.setdefault(root(nodes[0]), len(numbering)) for nodes in keys], dtype=np.int64
    )


def _cut_component(
    members: list[int], keys: list[list[tuple]], need: int, seed: int
) -> dict[int, str]:
    """The side of each pair (by index) of a component too large to hold out whole: its
    first kind's groups (people, when held out by person) join validation in a seeded
    order with the other kind's groups their pairs have, until `need` pairs are held out;
    pairs with only one of their groups held out are dropped."""
    pairs_of: dict[tuple, list[int]] = {}
    for i in members:
        for node in keys[i]:
            pairs_of.setdefault(node, []).append(i)
    lead = sorted({keys[i][0] for i in members})
    order = np.random.default_rng(seed + 1).permutation(len(lead))
    held: set[tuple] = set()
    held_nodes = dict.fromkeys(members, 0)  # of each pair's groups, how many are held out
    validation = 0

    def hold(node: tuple) -> int:
        """Hold out `node`; returns how many pairs it completes."""
        held.add(node)
        completed = 0
        for i in pairs_of[node]:
            held_nodes[i] += 1
            completed += held_nodes[i] == len(keys[i])
        return completed

    for position in order.tolist():
        person = lead[position]
        for node in [person, *(n for i in pairs_of[person] for n in keys[i])]:
            if node not in held:
                validation += hold(node)
        if validation >= need:
            break
    return {
        i: "validation"
        if held_nodes[i] == len(keys[i])
        else "train"
        if held_nodes[i] == 0
        else "dropped"
        for i in members
    }


def _describe_groups(group_of: dict[str, int]) -> DuplicateGroups:
    sizes = np.bincount(np.fromiter(group_of.values(), dtype=np.int64))
    return DuplicateGroups(
        photos=len(group_of),
        groups=len(sizes),
        duplicate_groups=int((sizes > 1).sum()),
        duplicated_photos=int(sizes[sizes > 1].sum()),
        largest=int(sizes.max()),
    )
