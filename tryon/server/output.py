"""Encoding try-on results for the caller: format, quality, size limit, provenance mark."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from catalog.images import MIME_TYPES, EncodedImage
from tryon.imaging import ENCODE_FORMATS
from tryon.provenance import SigningCredentials, TryOnClaims, mark_image, sign_manifest

DEFAULT_QUALITY = 90
# EXIF tags: ImageDescription and Software. Generated images say so in their metadata,
# so that a storefront or a shopper's tools can tell a try-on from a real photo.
_DESCRIPTION_TAG = 0x010E
_SOFTWARE_TAG = 0x0131


@dataclass(frozen=True)
class OutputSpec:
    """How to encode a result: `fmt` jpeg/png/webp, `quality` 1-100, and the box
    (`max_width` x `max_height`, 0 for no limit) the image is shrunk to fit."""

    fmt: str = "jpeg"
    quality: int = DEFAULT_QUALITY
    max_width: int = 0
    max_height: int = 0


def encode_result(
    image: np.ndarray,
    spec: OutputSpec,
    provenance: str,
    claims: TryOnClaims,
    credentials: SigningCredentials | None,
) -> EncodedImage:
    """Encode an RGB `(H, W, 3)` uint8 try-on as `spec` says, marked as AI-generated:
    `provenance` (e.g. "virtual try-on, weights synthetic 0.1.0") in its EXIF description,
    the invisible watermark of `claims` in its pixels, and a C2PA manifest of `claims`
    signed with `credentials` (None: no manifest; the server warned at start)."""
    picture = Image.fromarray(image)
    if spec.max_width or spec.max_height:
        bound = (spec.max_width or picture.width, spec.max_height or picture.height)
        picture.thumbnail(bound, Image.Resampling.LANCZOS)  # only ever shrinks, keeps aspect
    # The mark goes into the pixels the caller gets: after resizing, before encoding.
    picture = Image.fromarray(mark_image(np.asarray(picture), claims))
    pil_format = ENCODE_FORMATS[spec.fmt]
    exif = Image.Exif()
    exif[_DESCRIPTION_TAG] = f"AI-generated image: {provenance}"
    exif[_SOFTWARE_TAG] = "tryon"
    options: dict = {"exif": exif.tobytes()}
    if pil_format != "PNG":
        options["quality"] = spec.quality
    buffer = io.BytesIO()
    picture.save(buffer, format=pil_format, **options)
    data = buffer.getvalue()
    mime_type = MIME_TYPES[pil_format]
    if credentials is not None:
        data = sign_manifest(data, mime_type, claims, credentials)  # binds the final bytes
    return EncodedImage(data, mime_type, picture.width, picture.height)
