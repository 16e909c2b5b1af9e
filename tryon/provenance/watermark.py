"""The invisible watermark: a 64-bit payload hidden in an image's coarse brightness pattern.

Why this scheme. Shops and social networks re-encode and shrink images, so the mark
lives where those operations change little: the low and middle frequencies of the
image's luma, measured on a fixed `GRID` x `GRID` box-averaged copy of it. Because that
grid is defined relative to the picture, not in pixels, a 0.5x (or any) resize maps it
onto itself; JPEG's quantisation mostly removes finer detail than a grid cell.

Each payload bit is carried by one spread-transform dither-modulation (ST-DM) group: the
projection of `COEFFICIENTS_PER_BIT` DCT coefficients of the grid onto a key-derived
unit vector is moved to the nearest point of one of two interleaved lattices (bit 0 or
bit 1, step `STEP`). Unlike additive spread spectrum, the image's own content does not
interfere with reading the bit back, so a faint mark (about 1 grey level) is enough.

The payload (`WatermarkPayload`) is a 32-bit hash of the try-on id, a 16-bit code of the
weights (name and version) and a CRC-16 over both. A photo that was never marked reads
as 64 random bits, which pass the CRC once in 65,536 tries: that is the false-positive
rate on unmarked photos. The key is public (anyone can check a mark with `tryon verify`);
the watermark says "made by this service", the signed C2PA manifest says it with proof.

Arrays: images are RGB `(H, W, 3)` `uint8`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

GRID = 64  # the box-averaged luma grid, in cells per side, whatever the image size
PAYLOAD_BITS = 64
COEFFICIENTS_PER_BIT = 8
STEP = 44.0  # lattice step of a bit's projection, in grey levels of the orthonormal DCT
# Frequencies used, as (u + v) on the GRID x GRID DCT: not the lowest (large, visible
# brightness shifts) and not the highest (lost when a small image is shrunk again).
BAND = (3, 31)
EMBED_ROUNDS = 2  # re-measure and correct: resampling and rounding move projections
KEY = b"tryon-watermark-v1"
MIN_SIDE = 32  # pixels: smaller images cannot carry the mark reliably
# Unmarked images agree with the lattices at 2/pi = 0.64 on average (0.78 at most in
# 400 readings of 200 real photos); marks after JPEG 70 and a 0.5x resize at 0.93 or
# more. A reading below this is no mark even if its CRC passes: fewer false positives.
MIN_STRENGTH = 0.8


@dataclass(frozen=True)
class WatermarkPayload:
    """What a mark says: which try-on (`tryon_hash`, 32 bits) by which weights
    (`weights_code`, 16 bits); see `tryon_hash_of` and `weights_code_of`."""

    tryon_hash: int
    weights_code: int

    def to_bits(self) -> np.ndarray:
        """The 64 bits written into the image: hash, code, then their CRC-16."""
        body = (self.tryon_hash & 0xFFFFFFFF) << 16 | (self.weights_code & 0xFFFF)
        word = body << 16 | _crc16(body.to_bytes(6, "big"))
        return np.array([(word >> (63 - i)) & 1 for i in range(PAYLOAD_BITS)], dtype=np.uint8)

    @classmethod
    def from_bits(cls, bits: np.ndarray) -> WatermarkPayload | None:
        """The payload the 64 `bits` carry, or None when their CRC does not match."""
        word = 0
        for bit in bits:
            word = word << 1 | int(bit)
        body, crc = word >> 16, word & 0xFFFF
        if _crc16(body.to_bytes(6, "big")) != crc:
            return None
        return cls(tryon_hash=body >> 16, weights_code=body & 0xFFFF)

    @classmethod
    def for_tryon(cls, tryon_id: str, weights_name: str, weights_version: str) -> WatermarkPayload:
        """The payload that marks try-on `tryon_id` made by the named weights."""
        return cls(tryon_hash_of(tryon_id), weights_code_of(weights_name, weights_version))


@dataclass(frozen=True)
class WatermarkReading:
    """What `read_watermark` found: the payload (None: no valid mark) and `strength`,
    the mean agreement of the 64 bits with their lattices (1 perfect, about 0 for an
    unmarked image), which says how much margin the reading had."""

    payload: WatermarkPayload | None
    strength: float

    @property
    def found(self) -> bool:
        return self.payload is not None


def tryon_hash_of(tryon_id: str) -> int:
    """The 32-bit hash of a try-on id that a mark carries."""
    return int.from_bytes(hashlib.sha256(tryon_id.encode()).digest()[:4], "big")


def weights_code_of(name: str, version: str) -> int:
    """The 16-bit code of weights `name` at `version` that a mark carries."""
    return int.from_bytes(hashlib.sha256(f"{name} {version}".encode()).digest()[:2], "big")


def embed_watermark(image: np.ndarray, payload: WatermarkPayload) -> np.ndarray:
    """Return a copy of RGB `image` `(H, W, 3)` `uint8` carrying `payload` invisibly.

    The same brightness change is added to the three channels (colours keep their hue),
    about 1 grey level RMS. Raises ValueError for images under `MIN_SIDE` pixels a side.
    """
    _check_image(image)
    height, width = image.shape[:2]
    layout = _layout()
    bits = payload.to_bits().astype(np.float64)
    luma = _luma(image)
    projections = _projections(_grid(luma), layout)
    # The lattice point each bit's projection must reach: the nearest one of that bit.
    offset = layout.dither + bits * STEP / 2
    targets = offset + np.round((projections - offset) / STEP) * STEP
    change = np.zeros(layout.shape, dtype=np.float64)  # wanted projection changes
    for round_ in range(EMBED_ROUNDS):
        change += targets - projections
        full = _upsample(_spread(change, layout), width, height)
        if round_ + 1 < EMBED_ROUNDS:
            # Bright and dark areas clip: the next round asks the rest of the image for more.
            projections = _projections(_grid(np.clip(luma + full, 0, 255)), layout)
    step = np.rint(full)
    brighter = cv2.cvtColor(np.clip(step, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2RGB)
    darker = cv2.cvtColor(np.clip(-step, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2RGB)
    # Saturating uint8 arithmetic, the clipped sum of image and step (a pixel is either
    # brightened or darkened): about 3x as fast as widening the image to int16.
    return cv2.subtract(cv2.add(image, brighter), darker)


def read_watermark(image: np.ndarray) -> WatermarkReading:
    """Read the mark in RGB `image` `(H, W, 3)` `uint8`, if it carries one."""
    _check_image(image)
    layout = _layout()
    projections = _projections(_grid(_luma(image)), layout)
    # Phase of each projection on the bit-0 lattice: 0 means bit 0, half a step bit 1.
    phase = np.cos(2 * np.pi * (projections - layout.dither) / STEP)
    bits = (phase < 0).astype(np.uint8)
    strength = float(np.abs(phase).mean())
    payload = WatermarkPayload.from_bits(bits) if strength >= MIN_STRENGTH else None
    return WatermarkReading(payload, strength)


@dataclass(frozen=True)
class _Layout:
    """Which DCT coefficients carry which bit, and each bit's direction and dither."""

    rows: np.ndarray  # (PAYLOAD_BITS, COEFFICIENTS_PER_BIT) DCT row index
    cols: np.ndarray  # same shape, column index
    directions: np.ndarray  # same shape, unit vector per bit
    dither: np.ndarray  # (PAYLOAD_BITS,) in [0, STEP)
    shape: tuple[int] = (PAYLOAD_BITS,)


_LAYOUT: _Layout | None = None
_DCT: np.ndarray | None = None


def _layout() -> _Layout:
    """The key-derived layout, computed once."""
    global _LAYOUT
    if _LAYOUT is None:
        rng = np.random.default_rng(np.frombuffer(hashlib.sha256(KEY).digest(), dtype=np.uint32))
        u, v = np.meshgrid(np.arange(GRID), np.arange(GRID), indexing="ij")
        band = (u + v >= BAND[0]) & (u + v <= BAND[1])
        rows, cols = u[band], v[band]
        needed = PAYLOAD_BITS * COEFFICIENTS_PER_BIT
        if rows.size < needed:
            raise RuntimeError(f"the band holds {rows.size} coefficients, {needed} are needed")
        chosen = rng.permutation(rows.size)[:needed].reshape(PAYLOAD_BITS, COEFFICIENTS_PER_BIT)
        directions = rng.choice([-1.0, 1.0], size=chosen.shape) / np.sqrt(COEFFICIENTS_PER_BIT)
        dither = rng.uniform(0, STEP, size=PAYLOAD_BITS)
        _LAYOUT = _Layout(rows[chosen], cols[chosen], directions, dither)
    return _LAYOUT


def _dct_matrix() -> np.ndarray:
    """The orthonormal DCT-II matrix of size GRID (rows: frequencies)."""
    global _DCT
    if _DCT is None:
        n = np.arange(GRID)
        matrix = np.cos(np.pi * (2 * n[None, :] + 1) * n[:, None] / (2 * GRID))
        matrix[0] *= 1 / np.sqrt(2)
        _DCT = matrix * np.sqrt(2 / GRID)
    return _DCT


def _luma(image: np.ndarray) -> np.ndarray:
    """The `(H, W)` float32 luma (ITU-R 601: 0.299 R + 0.587 G + 0.114 B) of RGB `image`."""
    return np.asarray(Image.fromarray(image).convert("L"), dtype=np.float32)


def _grid(luma: np.ndarray) -> np.ndarray:
    """Box-average a `(H, W)` float luma image to `(GRID, GRID)`."""
    picture = Image.fromarray(np.ascontiguousarray(luma, dtype=np.float32), mode="F")
    return np.asarray(picture.resize((GRID, GRID), Image.Resampling.BICUBIC), dtype=np.float64)


def _upsample(delta: np.ndarray, width: int, height: int) -> np.ndarray:
    """Stretch a `(GRID, GRID)` luma change smoothly over a `(height, width)` image.

    OpenCV's bicubic resize, about 5x as fast as Pillow's on a 640x480 image; which cubic
    it is does not matter to a reader, as the embedding measures what its pattern did."""
    return cv2.resize(delta.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)


def _projections(grid: np.ndarray, layout: _Layout) -> np.ndarray:
    """Each bit's projection: its coefficients of the grid's DCT onto its direction."""
    dct = _dct_matrix()
    coefficients = dct @ grid @ dct.T
    return (coefficients[layout.rows, layout.cols] * layout.directions).sum(axis=1)


def _spread(change: np.ndarray, layout: _Layout) -> np.ndarray:
    """The `(GRID, GRID)` luma pattern that moves each bit's projection by `change`."""
    dct = _dct_matrix()
    coefficients = np.zeros((GRID, GRID))
    np.add.at(coefficients, (layout.rows, layout.cols), change[:, None] * layout.directions)
    return dct.T @ coefficients @ dct


def _check_image(image: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 array (H, W, 3), got {image.dtype} {image.shape}")
    if min(image.shape[:2]) < MIN_SIDE:
        raise ValueError(
            f"image is {image.shape[1]}x{image.shape[0]}; a watermark needs at least "
            f"{MIN_SIDE} pixels a side"
        )


def _crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE of `data`: the payload's check bits."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = (crc << 1 ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc
