"""Perceptual hashes of photos, to find near-duplicates that a split must keep together.

A shop's catalogue holds the same photo twice under different names (re-encoded,
re-sized, lightly retouched), and a held-out set that shares such a photo with training
measures memory, not generalisation. `phash` is the DCT hash of Zauner (2010) as the
`imagehash` package computes it: the photo as 32x32 grey, its 2-D DCT-II, the 8x8 lowest
frequencies, one bit per coefficient above their median. Re-encoding or resizing a
photo moves a few bits; different photos differ in about half of the 64.
`near_duplicate_groups` joins photos whose hashes lie within a Hamming distance.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.fft import dct

from tryon.errors import DatasetError, InvalidInputError
from tryon.imaging import open_image, to_rgb

HASH_SIZE = 8  # 8x8 = 64 bits
_SAMPLES = 4 * HASH_SIZE  # the grey thumbnail's side, as imagehash's highfreq_factor 4
_COMPARE_ROWS = 512  # hashes compared with all others at once (memory: rows x n bytes)


def phash(image: Image.Image) -> np.ndarray:
    """The 64-bit DCT perceptual hash of a photo, as `(8,)` uint8 (bits packed, row-major)."""
    grey = to_rgb(image).convert("L").resize((_SAMPLES, _SAMPLES), Image.Resampling.LANCZOS)
    pixels = np.asarray(grey, dtype=np.float64)
    frequencies = dct(dct(pixels, axis=0, norm="ortho"), axis=1, norm="ortho")
    low = frequencies[:HASH_SIZE, :HASH_SIZE]
    return np.packbits(low > np.median(low))


def phash_file(path: Path) -> np.ndarray:
    """`phash` of the image file at `path`; a `DatasetError` names a file that is no image."""
    try:
        return phash(open_image(path))
    except InvalidInputError as error:
        raise DatasetError(str(error)) from error


def hash_files(paths: Sequence[Path], on_hashed: Callable[[], None] | None = None) -> np.ndarray:
    """The hashes of `paths` as `(N, 8)` uint8; `on_hashed` is called after each file (a
    progress bar)."""
    hashes = np.zeros((len(paths), HASH_SIZE), dtype=np.uint8)
    for row, path in enumerate(paths):
        hashes[row] = phash_file(path)
        if on_hashed is not None:
            on_hashed()
    return hashes


def hamming_distances(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Bits that differ between each hash of `first` `(N, 8)` and each of `second`
    `(M, 8)` uint8: `(N, M)` int, 0-64."""
    differing = np.bitwise_xor(first[:, None, :], second[None, :, :])
    return np.bitwise_count(differing).sum(axis=-1, dtype=np.int64)


def near_duplicate_groups(hashes: np.ndarray, max_distance: int) -> np.ndarray:
    """A group number for each hash of `(N, 8)` uint8: hashes within `max_distance` bits
    of each other share one, and so, transitively, do chains of them. Returns `(N,)` int,
    groups numbered 0.. in order of their first member."""
    if max_distance < 0:
        raise InvalidInputError(f"Hamming distance {max_distance}: give 0 or more")
    parent = np.arange(len(hashes))

    def root(item: int) -> int:
        while parent[item] != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    for start in range(0, len(hashes), _COMPARE_ROWS):
        block = hamming_distances(hashes[start : start + _COMPARE_ROWS], hashes)
        rows, columns = np.nonzero(block <= max_distance)
        for row, column in zip(rows + start, columns, strict=True):
            if column > row:
                a, b = root(int(row)), root(int(column))
                if a != b:
                    parent[max(a, b)] = min(a, b)
    roots = np.array([root(item) for item in range(len(hashes))], dtype=np.int64)
    _, first_seen = np.unique(roots, return_index=True)
    numbering = {int(roots[index]): number for number, index in enumerate(sorted(first_seen))}
    return np.array([numbering[int(r)] for r in roots], dtype=np.int64)
