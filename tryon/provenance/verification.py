"""Checking a file for this service's marks: the C2PA manifest and the watermark."""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from tryon.provenance.manifest import ManifestReading, read_manifest
from tryon.provenance.watermark import (
    MIN_SIDE,
    WatermarkReading,
    read_watermark,
    tryon_hash_of,
    weights_code_of,
)

FORMAT_MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
# Larger images are refused: decoding them could exhaust memory (a decompression bomb).
MAX_PIXELS = 100_000_000

# What a file is, from best to worst; the first two mean "made by this service".
SIGNED = "signed"  # a valid manifest with our claims (and no contradicting watermark)
WATERMARKED = "watermarked"  # no valid manifest of ours, but the watermark is there
INVALID = "invalid"  # a manifest that fails validation, or marks that contradict
UNMARKED = "unmarked"  # neither mark: not (recognisably) a try-on of this service
UNREADABLE = "unreadable"  # not an image this tool can read


@dataclass(frozen=True)
class Verification:
    """The verdict on one file and what it rests on.

    Attributes:
        status: one of signed, watermarked, invalid, unmarked, unreadable.
        reason: one sentence saying why.
        mime_type: the file's image type (None when unreadable).
        manifest: what the C2PA manifest check found.
        watermark: what the watermark reader found (None: the pixels were not readable,
            or the image is too small to carry a mark).
        weights: the weights the watermark names, as "name version", when they are
            among `known_weights`.
    """

    status: str
    reason: str
    mime_type: str | None
    manifest: ManifestReading
    watermark: WatermarkReading | None
    weights: str | None = None

    @property
    def verified(self) -> bool:
        """The file carries an intact mark of this service (signed or watermarked)."""
        return self.status in (SIGNED, WATERMARKED)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description, for `tryon verify --json`."""
        manifest = self.manifest
        claims = manifest.claims
        payload = self.watermark.payload if self.watermark else None
        return {
            "status": self.status,
            "verified": self.verified,
            "reason": self.reason,
            "mime_type": self.mime_type,
            "manifest": {
                "present": manifest.present,
                "state": manifest.state,
                "valid": manifest.valid,
                "trusted": manifest.trusted,
                "source_type": manifest.source_type,
                "tryon_id": claims.tryon_id if claims else None,
                "weights": (
                    {"name": claims.weights_name, "version": claims.weights_version}
                    if claims
                    else None
                ),
                "signer": manifest.signer,
                "problems": list(manifest.problems),
            },
            "watermark": {
                "found": payload is not None,
                "strength": round(self.watermark.strength, 3) if self.watermark else None,
                "tryon_hash": f"{payload.tryon_hash:08x}" if payload else None,
                "weights_code": f"{payload.weights_code:04x}" if payload else None,
                "weights": self.weights,
            },
        }


def verify_image(
    data: bytes,
    *,
    trust_anchors: bytes | None = None,
    known_weights: Iterable[tuple[str, str]] = (),
) -> Verification:
    """Check encoded image `data` (JPEG, PNG or WebP) for this service's marks.

    `trust_anchors`: PEM root certificates whose manifests count as trusted.
    `known_weights`: (name, version) pairs the watermark's 16-bit weights code is looked
    up in, so that the verdict can name them.
    """
    try:
        picture, mime_type = _open(data)
    except ValueError as error:
        return Verification(UNREADABLE, str(error), None, ManifestReading(present=False), None)
    manifest = read_manifest(data, mime_type, trust_anchors=trust_anchors)
    watermark = _read_mark(picture)
    payload = watermark.payload if watermark else None
    weights = None
    if payload is not None:
        codes = {
            weights_code_of(name, version): f"{name} {version}" for name, version in known_weights
        }
        weights = codes.get(payload.weights_code)
    status, reason = _verdict(manifest, watermark)
    return Verification(status, reason, mime_type, manifest, watermark, weights)


def _verdict(manifest: ManifestReading, watermark: WatermarkReading | None) -> tuple[str, str]:
    payload = watermark.payload if watermark else None
    if manifest.present and not manifest.valid:
        detail = f": {manifest.problems[0]}" if manifest.problems else ""
        return INVALID, f"the C2PA manifest does not validate ({manifest.state}){detail}"
    claims = manifest.claims if manifest.valid else None
    if claims is not None:
        if payload is not None and (
            payload.tryon_hash != tryon_hash_of(claims.tryon_id)
            or payload.weights_code != weights_code_of(claims.weights_name, claims.weights_version)
        ):
            return INVALID, "the watermark names another try-on than the signed manifest"
        how = "trusted" if manifest.trusted else "valid, signer not in the trust list"
        mark = "watermark agrees" if payload else "no watermark found"
        return SIGNED, f"signed manifest ({how}) of try-on {claims.tryon_id}; {mark}"
    if payload is not None:
        return WATERMARKED, "watermark found (no manifest: the file was re-encoded or edited)"
    if watermark is None:
        return UNMARKED, f"no manifest, and the image is under {MIN_SIDE} pixels a side"
    return UNMARKED, "no manifest and no watermark of this service"


def _open(data: bytes) -> tuple[np.ndarray, str]:
    """Decode `data` to RGB pixels and its MIME type; ValueError says why not."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            picture = Image.open(io.BytesIO(data))
            mime_type = FORMAT_MIME.get(picture.format or "")
            if mime_type is None:
                raise ValueError(
                    f"{picture.format} files are not checked; try-ons are JPEG, PNG or WebP"
                )
            if picture.width * picture.height > MAX_PIXELS:
                raise ValueError(f"the image is {picture.width}x{picture.height}, too large")
            return np.asarray(picture.convert("RGB")), mime_type
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"not a readable image ({error})") from None


def _read_mark(pixels: np.ndarray) -> WatermarkReading | None:
    if min(pixels.shape[:2]) < MIN_SIDE:
        return None
    return read_watermark(pixels)
