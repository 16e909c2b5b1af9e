"""Turning a merchandiser's inputs (files, category words, tags) into catalog values.

Pure functions with no database access, so an import can run them in worker processes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from catalog.errors import FieldError, ImageError
from catalog.images import encode_mask, load_mask, load_photo
from catalog.masks import extract_mask, inspect_mask
from catalog.models import Category, MaskSource
from catalog.repository import GarmentFields, GarmentImages

# Column sizes of the garments table.
SKU_LENGTH, NAME_LENGTH, BRAND_LENGTH, COLOUR_LENGTH = 64, 200, 100, 50

# Words shops use for product types, mapped onto the categories try-on knows.
CATEGORY_ALIASES: dict[str, Category] = {
    **{c.value: c for c in Category},
    **dict.fromkeys(
        (
            "tops",
            "t-shirt",
            "t-shirts",
            "tshirt",
            "tee",
            "tees",
            "shirt",
            "shirts",
            "blouse",
            "blouses",
            "sweater",
            "sweaters",
            "jumper",
            "jumpers",
            "hoodie",
            "hoodies",
            "sweatshirt",
            "sweatshirts",
            "tank top",
            "polo",
            "knitwear",
            "upper-clothes",
        ),
        Category.TOP,
    ),
    **dict.fromkeys(("dresses", "gown"), Category.DRESS),
    **dict.fromkeys(
        ("trouser", "pants", "pant", "jeans", "chinos", "leggings", "shorts"), Category.TROUSERS
    ),
    **dict.fromkeys(("skirts",), Category.SKIRT),
    **dict.fromkeys(
        (
            "coat",
            "coats",
            "jacket",
            "jackets",
            "blazer",
            "blazers",
            "outerwear",
            "cardigan",
            "cardigans",
        ),
        Category.OUTERWEAR,
    ),
    **dict.fromkeys(("jumpsuits", "overall", "overalls", "romper", "rompers"), Category.JUMPSUIT),
}


@dataclass(frozen=True)
class PreparedImages:
    """A garment's images ready to store, with any doubts about the mask."""

    images: GarmentImages
    warnings: tuple[str, ...]


def parse_category(text: str) -> Category:
    """The category a word names (``"T-Shirts"`` -> top); FieldError names the choices."""
    key = " ".join(text.strip().lower().split())
    try:
        return CATEGORY_ALIASES[key]
    except KeyError:
        choices = ", ".join(c.value for c in Category)
        raise FieldError(
            "category", f"unknown category `{text.strip()}`, supported: {choices}"
        ) from None


def _text(field: str, value: str | None, limit: int, *, required: bool = False) -> str | None:
    text = " ".join(value.split()) if value else ""
    if not text:
        if required:
            raise FieldError(field, "is empty")
        return None
    if len(text) > limit:
        raise FieldError(field, f"is {len(text)} characters long; at most {limit} are allowed")
    return text


def make_fields(
    sku: str,
    name: str,
    category: str,
    brand: str | None = None,
    colour: str | None = None,
    tags: str | list[str] | tuple[str, ...] | None = None,
) -> GarmentFields:
    """Validated garment fields from a merchandiser's text; FieldError names the bad one."""
    clean_sku = sku.strip()
    if not clean_sku:
        raise FieldError("sku", "is empty")
    if len(clean_sku) > SKU_LENGTH or any(c.isspace() for c in clean_sku):
        raise FieldError(
            "sku", f"`{clean_sku}` must be at most {SKU_LENGTH} characters without spaces"
        )
    return GarmentFields(
        sku=clean_sku,
        name=_text("name", name, NAME_LENGTH, required=True) or "",
        category=parse_category(category),
        brand=_text("brand", brand, BRAND_LENGTH),
        colour=_text("colour", colour, COLOUR_LENGTH),
        tags=parse_tags(tags),
    )


def parse_tags(values: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """Tags from ``"a, b"`` or a list: trimmed, empty ones dropped, first occurrence kept."""
    if values is None:
        return ()
    parts = values.split(",") if isinstance(values, str) else values
    seen: dict[str, None] = {}
    for part in parts:
        tag = part.strip()
        if tag:
            seen.setdefault(tag, None)
    return tuple(seen)


def read_file(path: Path, what: str) -> bytes:
    """The bytes of ``path``; ImageError that names the file when it cannot be read."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ImageError(f"{what} file {path} does not exist") from None
    except IsADirectoryError:
        raise ImageError(f"{what} path {path} is a folder, not a file") from None
    except OSError as error:
        raise ImageError(f"{what} file {path} cannot be read: {error.strerror}") from None


def prepare_images(photo_data: bytes, mask_data: bytes | None = None) -> PreparedImages:
    """Validate a product photo and find its garment mask.

    The mask is the merchandiser's when given, else the photo's transparency when it has
    one, else extracted from the photo. Raises ImageError when either file is unusable.
    """
    photo = load_photo(photo_data)
    if mask_data is not None:
        mask, source = load_mask(mask_data, photo.source_size), MaskSource.SUPPLIED
    elif photo.alpha_mask is not None:
        mask, source = photo.alpha_mask, MaskSource.ALPHA
    else:
        mask, source = extract_mask(photo.rgb), MaskSource.EXTRACTED
    if not mask.any():
        raise ImageError(
            "no garment found in the photo; is it on a plain white or light-grey "
            "background? Supply a mask otherwise"
        )
    report = inspect_mask(mask)
    return PreparedImages(GarmentImages(photo.encoded, encode_mask(mask), source), report.warnings)
