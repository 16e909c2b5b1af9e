"""Commands on single garments: add, update, show, list, activate, archive, remove."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from catalog import repository
from catalog.cli.common import (
    DbUrlOption,
    JsonOption,
    console,
    err_console,
    fail,
    garment_dict,
    open_catalog,
    print_json,
)
from catalog.errors import ImageError
from catalog.fetching import FetchError, FetchSettings, fetch_images, is_url
from catalog.images import encode_mask, load_photo
from catalog.masks import extract_mask, inspect_mask
from catalog.models import Category, ImageKind, MaskSource, Status
from catalog.onboarding import PreparedImages, make_fields, prepare_images, read_file
from catalog.repository import GarmentFields, GarmentImages
from catalog.weights import serving_weights
from tryon.errors import TryOnError

SkuArgument = Annotated[str, typer.Argument(help="The garment's SKU.", show_default=False)]
SkusArgument = Annotated[list[str], typer.Argument(help="One or more SKUs.", show_default=False)]
ImageOption = Annotated[
    str | None,
    typer.Option("--image", help="Product photo (JPEG, PNG or WebP): a file or an http(s) URL."),
]
MaskOption = Annotated[
    str | None,
    typer.Option(
        "--mask",
        help="Garment mask (white = garment) instead of extracting one: a file or an http(s) URL.",
    ),
]
BrandOption = Annotated[str | None, typer.Option("--brand", help="Brand name.")]
ColourOption = Annotated[str | None, typer.Option("--colour", "--color", help="Colour name.")]
TagOption = Annotated[
    list[str] | None, typer.Option("--tag", help="A tag; repeat for several.", show_default=False)
]


def _read_source(source: str, what: str) -> bytes:
    """The bytes of a photo or mask given as a file or an http(s) URL (downloaded through
    the image cache, with the limits of TRYON_IMAGE_*)."""
    if not is_url(source):
        return read_file(Path(source).expanduser(), what)
    (result,) = fetch_images([source], FetchSettings.from_environ(os.environ)).values()
    if isinstance(result, FetchError):
        raise ImageError(f"--{what} {result}", what)
    return read_file(result.path, what)


def _prepare(image: str, mask: str | None) -> PreparedImages:
    try:
        mask_data = _read_source(mask, "mask") if mask else None
        return prepare_images(_read_source(image, "image"), mask_data)
    except TryOnError as error:
        fail(str(error))


def _category_warnings(fields: GarmentFields) -> tuple[str, ...]:
    """A warning when the serving weights cannot dress the garment's category."""
    weights = serving_weights(os.environ)
    warning = weights.warning(fields.category) if weights else None
    return (warning,) if warning else ()


def _warn(sku: str, warnings: tuple[str, ...]) -> None:
    for warning in warnings:
        err_console.print(f"[yellow]warning:[/] {sku}: {warning}", highlight=False)


def add(
    sku: SkuArgument,
    image: Annotated[
        str,
        typer.Option(
            "--image", help="Product photo (JPEG, PNG or WebP): a file or an http(s) URL."
        ),
    ],
    name: Annotated[str, typer.Option("--name", help="Name shoppers see.")],
    category: Annotated[str, typer.Option("--category", help="top, dress, trousers, ...")],
    mask: MaskOption = None,
    brand: BrandOption = None,
    colour: ColourOption = None,
    tag: TagOption = None,
    activate: Annotated[bool, typer.Option("--activate", help="Serve it at once.")] = False,
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add one garment from its product photo; the mask is extracted unless --mask is given."""
    with open_catalog(db_url) as sessions:
        fields = make_fields(sku, name, category, brand, colour, tag)
        prepared = _prepare(image, mask)
        with sessions.begin() as session:
            garment = repository.add_garment(session, fields, prepared.images, activate=activate)
            result = garment_dict(garment)
    warnings = _category_warnings(fields) + prepared.warnings
    _warn(sku, warnings)
    if as_json:
        print_json({**result, "warnings": list(warnings)})
    else:
        console.print(f"added {result['sku']} ({result['status']}, revision {result['revision']})")


def update(
    sku: SkuArgument,
    name: Annotated[str | None, typer.Option("--name", help="New name.")] = None,
    category: Annotated[str | None, typer.Option("--category", help="New category.")] = None,
    brand: BrandOption = None,
    colour: ColourOption = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="Replace the tags; repeat for several.")
    ] = None,
    image: ImageOption = None,
    mask: MaskOption = None,
    extract: Annotated[
        bool, typer.Option("--extract-mask", help="Replace the mask by one extracted anew.")
    ] = False,
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change a garment's fields or images; options not given keep their values.

    An empty --brand "" or --colour "" clears the value.
    """
    warnings: tuple[str, ...] = ()
    with open_catalog(db_url) as sessions:
        # A new photo is read (perhaps downloaded) before the transaction starts.
        new_photo = _prepare(image, mask) if image is not None else None
        with sessions.begin() as session:
            garment = repository.get_garment(session, sku, with_image_data=True)
            fields = make_fields(
                sku,
                name if name is not None else garment.name,
                category if category is not None else garment.category.value,
                brand if brand is not None else garment.brand,
                colour if colour is not None else garment.colour,
                tag if tag is not None else garment.tags,
            )
            images = None
            if new_photo is not None:
                images, warnings = new_photo.images, new_photo.warnings
            elif mask is not None or extract:
                images, warnings = _new_mask(garment.image(ImageKind.PHOTO).data, mask)
            changed = repository.update_garment(session, sku, fields=fields, images=images)
            result = garment_dict(garment)
    if category is not None:
        warnings = _category_warnings(fields) + warnings
    _warn(sku, warnings)
    if as_json:
        print_json({**result, "changed": changed, "warnings": list(warnings)})
    elif changed:
        console.print(f"updated {sku} (revision {result['revision']})")
    else:
        console.print(f"{sku} unchanged")


def _new_mask(photo_data: bytes, mask: str | None) -> tuple[GarmentImages, tuple[str, ...]]:
    """The stored photo with a mask from ``mask``, or extracted anew when it is None."""
    if mask is not None:
        prepared = _prepare_bytes(photo_data, mask)
        return prepared.images, prepared.warnings
    photo = load_photo(photo_data)
    extracted = extract_mask(photo.rgb)
    images = GarmentImages(photo.encoded, encode_mask(extracted), MaskSource.EXTRACTED)
    return images, inspect_mask(extracted).warnings


def _prepare_bytes(photo: bytes, mask: str) -> PreparedImages:
    try:
        return prepare_images(photo, _read_source(mask, "mask"))
    except TryOnError as error:
        fail(str(error))


def show(sku: SkuArgument, db_url: DbUrlOption = None, as_json: JsonOption = False) -> None:
    """Show one garment, whatever its status."""
    with open_catalog(db_url) as sessions, sessions() as session:
        result = garment_dict(repository.get_garment(session, sku))
    if as_json:
        print_json(result)
        return
    table = Table(show_header=False, box=None)
    for key in ("sku", "name", "brand", "category", "colour", "status", "revision"):
        table.add_row(key, str(result[key] if result[key] is not None else "-"))
    table.add_row("tags", ", ".join(result["tags"]) or "-")
    table.add_row("created", result["created_at"])
    table.add_row("updated", result["updated_at"])
    for kind, info in result["images"].items():
        source = f", {info['source']}" if "source" in info else ""
        table.add_row(
            kind,
            f"{info['mime_type']} {info['width']}x{info['height']}, {info['bytes']:,} bytes"
            f"{source}, sha256 {info['sha256'][:12]}",
        )
    console.print(table)


def list_command(
    status: Annotated[Status | None, typer.Option("--status", help="Only this status.")] = None,
    category: Annotated[
        Category | None, typer.Option("--category", help="Only this category.")
    ] = None,
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """List garments in SKU order."""
    with open_catalog(db_url) as sessions, sessions() as session:
        rows = [
            garment_dict(g)
            for g in repository.list_garments(session, status=status, category=category)
        ]
    if as_json:
        print_json(rows)
        return
    table = Table("SKU", "name", "category", "brand", "colour", "status", "rev")
    for row in rows:
        table.add_row(
            row["sku"],
            row["name"],
            row["category"],
            row["brand"] or "",
            row["colour"] or "",
            row["status"],
            str(row["revision"]),
        )
    console.print(table)
    console.print(f"{len(rows)} garment(s)")


def _set_status(skus: list[str], status: Status, db_url: str | None, as_json: bool) -> None:
    with open_catalog(db_url) as sessions, sessions.begin() as session:
        garments = repository.set_status(session, skus, status)
        result = [
            {"sku": g.sku, "status": g.status.value, "revision": g.revision} for g in garments
        ]
    if as_json:
        print_json(result)
    else:
        console.print(f"{len(result)} garment(s) now {status.value}")


def activate(skus: SkusArgument, db_url: DbUrlOption = None, as_json: JsonOption = False) -> None:
    """Make garments active: the service starts serving them."""
    _set_status(skus, Status.ACTIVE, db_url, as_json)


def archive(skus: SkusArgument, db_url: DbUrlOption = None, as_json: JsonOption = False) -> None:
    """Archive garments: the service stops serving them; they stay in the catalog."""
    _set_status(skus, Status.ARCHIVED, db_url, as_json)


def remove(
    skus: SkusArgument,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete garments and their images for good (asks first unless --yes)."""
    with open_catalog(db_url) as sessions:
        if not yes and not typer.confirm(
            f"Delete {len(skus)} garment(s) ({', '.join(skus)}) for good?"
        ):
            fail("nothing deleted")
        with sessions.begin() as session:
            count = repository.remove_garments(session, skus)
    if as_json:
        print_json({"removed": skus})
    else:
        console.print(f"removed {count} garment(s)")
