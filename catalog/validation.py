"""Re-checking stored garments: bytes intact, images decodable, mask matching the photo."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from catalog.errors import ImageError
from catalog.images import decode_stored
from catalog.masks import inspect_mask
from catalog.models import Garment, ImageKind


@dataclass(frozen=True)
class GarmentCheck:
    """Problems found with one stored garment: errors make it unservable."""

    sku: str
    errors: tuple[str, ...]
    warnings: tuple[str, ...]


def check_garment(garment: Garment) -> GarmentCheck:
    """Check a garment loaded with its image bytes."""
    errors: list[str] = []
    warnings: list[str] = []
    pixels = {}
    for kind in ImageKind:
        image = garment.image(kind)
        if image is None:
            errors.append(f"it has no {kind.value}")
            continue
        if hashlib.sha256(image.data).hexdigest() != image.sha256:
            errors.append(f"the {kind.value}'s bytes do not match their checksum")
            continue
        try:
            decoded = decode_stored(image.data)
        except ImageError as error:
            errors.append(f"the stored {kind.value} does not decode: {error}")
            continue
        if decoded.shape[:2] != (image.height, image.width):
            errors.append(
                f"the {kind.value} is {decoded.shape[1]}x{decoded.shape[0]} but recorded as "
                f"{image.width}x{image.height}"
            )
        pixels[kind] = decoded
    photo, mask = pixels.get(ImageKind.PHOTO), pixels.get(ImageKind.MASK)
    if photo is not None and mask is not None:
        if mask.ndim != 2 or mask.shape != photo.shape[:2]:
            errors.append("the mask's size differs from the photo's")
        elif not mask.any():
            errors.append("the mask is empty")
        else:
            warnings.extend(inspect_mask(mask).warnings)
    return GarmentCheck(garment.sku, tuple(errors), tuple(warnings))
