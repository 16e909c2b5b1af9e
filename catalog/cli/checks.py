"""Commands that look at stored garments: validate and preview."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from PIL import Image

from catalog import repository
from catalog.cli.common import (
    DbUrlOption,
    JsonOption,
    console,
    err_console,
    fail,
    open_catalog,
    print_json,
)
from catalog.errors import ImageError
from catalog.images import decode_stored, load_photo
from catalog.models import ImageKind
from catalog.onboarding import read_file
from catalog.preview import compose_sheet, garment_panels, tried_on_panels
from catalog.validation import check_garment


def validate(db_url: DbUrlOption = None, as_json: JsonOption = False) -> None:
    """Re-check every stored photo and mask; exit status 1 when any garment has errors."""
    with open_catalog(db_url) as sessions, sessions() as session:
        checks = [check_garment(g) for g in repository.list_garments(session, with_image_data=True)]
    failed = [c for c in checks if c.errors]
    if as_json:
        print_json(
            [{"sku": c.sku, "errors": list(c.errors), "warnings": list(c.warnings)} for c in checks]
        )
    else:
        for check in checks:
            for error in check.errors:
                console.print(f"[red]error:[/] {check.sku}: {error}", highlight=False)
            for warning in check.warnings:
                console.print(f"[yellow]warning:[/] {check.sku}: {warning}", highlight=False)
        console.print(f"{len(checks)} garment(s) checked, {len(failed)} with errors")
    if failed:
        raise typer.Exit(1)


def preview(
    sku: Annotated[str, typer.Argument(help="The garment's SKU.", show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the PNG sheet.")],
    weights: Annotated[
        Path | None, typer.Option("--weights", help="Try-on pipeline folder for tried-on panels.")
    ] = None,
    shopper: Annotated[
        list[Path] | None, typer.Option("--shopper", help="A shopper photo; repeat for several.")
    ] = None,
    db_url: DbUrlOption = None,
) -> None:
    """Write a sheet with the garment's photo, mask and overlay (and tried on, with weights)."""
    with open_catalog(db_url) as sessions, sessions() as session:
        garment = repository.get_garment(session, sku, with_image_data=True)
        photo = decode_stored(garment.image(ImageKind.PHOTO).data)
        mask = decode_stored(garment.image(ImageKind.MASK).data)
    try:
        shoppers = [load_photo(read_file(p, "shopper")).rgb for p in shopper or []]
    except ImageError as error:
        fail(str(error))
    extra, note = tried_on_panels(photo, mask, weights, shoppers)
    sheet = compose_sheet(garment_panels(photo, mask) + [np.asarray(p) for p in extra])
    Image.fromarray(sheet).save(output)
    if note:
        err_console.print(f"note: {note}", highlight=False)
    console.print(f"wrote {output}")
