"""Bulk commands: import a CSV of garments, export the catalog as one."""

from __future__ import annotations

import csv
import hashlib
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

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
from catalog.csvfiles import FORMATS, parse_import_file
from catalog.fetching import FetchedImage, FetchError, FetchSettings
from catalog.importer import ImportReport, RowResult, default_jobs, remote_urls, run_import
from catalog.models import ImageKind, Status
from catalog.weights import serving_weights

EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}


def import_command(
    file: Annotated[Path, typer.Argument(help="The CSV file.", show_default=False)],
    fmt: Annotated[
        str,
        typer.Option("--format", help=f"File format: {', '.join(FORMATS)} (auto: from header)."),
    ] = "auto",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check everything, change nothing.")
    ] = False,
    activate: Annotated[
        bool, typer.Option("--activate", help="Make imported garments active.")
    ] = False,
    jobs: Annotated[
        int | None,
        typer.Option("--jobs", "-j", min=1, help="Processes preparing images. [default: CPUs]"),
    ] = None,
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Import garments from our CSV or a Shopify product export.

    Each row goes in whole or not at all; bad rows are listed with line, column and
    reason while good rows still go in. Re-importing the same file changes nothing.
    Images given as http(s) URLs are downloaded (limits and cache: TRYON_IMAGE_*).
    The exit status is 1 when any row failed.
    """
    try:
        data = file.read_bytes()
    except OSError as error:
        fail(f"cannot read {file}: {error.strerror}")
    with open_catalog(db_url) as sessions:
        parsed = parse_import_file(data, fmt)
        fetch = FetchSettings.from_environ(os.environ)
        total = len(parsed.rows) + len(parsed.errors)
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err_console,
            transient=True,
            disable=as_json,
        ) as progress:
            urls = remote_urls(parsed.rows)
            downloads = progress.add_task("downloading", total=len(urls), visible=bool(urls))
            task = progress.add_task("importing", total=total)

            def advance(_: RowResult) -> None:
                progress.advance(task)

            def fetched(_: FetchedImage | FetchError) -> None:
                progress.advance(downloads)

            report = run_import(
                sessions,
                parsed,
                file.resolve().parent,
                activate=activate,
                dry_run=dry_run,
                jobs=jobs or default_jobs(),
                fetch=fetch,
                weights=serving_weights(os.environ),
                on_row=advance,
                on_fetched=fetched,
            )
    _print_report(report, parsed.format, dry_run, as_json)
    if report.failed:
        raise typer.Exit(1)


def _print_report(report: ImportReport, fmt: str, dry_run: bool, as_json: bool) -> None:
    if as_json:
        print_json(
            {
                "format": fmt,
                "dry_run": dry_run,
                "summary": report.counts,
                "images": report.downloads,
                "rows": [
                    {
                        "line": r.line,
                        "sku": r.sku,
                        "outcome": r.outcome.value if r.outcome else "failed",
                        **({"column": r.error.column, "reason": r.error.reason} if r.error else {}),
                        "warnings": list(r.warnings),
                    }
                    for r in report.results
                ],
            }
        )
        return
    if report.failed:
        table = Table(
            "line", "column", "SKU", "reason", title="rows that failed", title_justify="left"
        )
        for r in report.failed:
            assert r.error is not None
            table.add_row(str(r.line), r.error.column or "-", r.sku or "-", r.error.reason)
        console.print(table)
    for r in report.results:
        for warning in r.warnings:
            console.print(
                f"[yellow]warning:[/] line {r.line} ({r.sku}): {warning}", highlight=False
            )
    downloads = report.downloads
    if any(downloads.values()):
        console.print(
            f"image URLs: {downloads['downloaded']} downloaded, {downloads['cached']} unchanged "
            f"since the last download (cached), {downloads['failed']} failed"
        )
    counts = report.counts
    prefix = "dry run, nothing written: would have " if dry_run else ""
    console.print(
        f"{prefix}{counts['added']} added, {counts['updated']} updated, "
        f"{counts['unchanged']} unchanged, {counts['failed']} failed"
    )


def export_command(
    file: Annotated[Path, typer.Argument(help="The CSV file to write.", show_default=False)],
    status: Annotated[Status | None, typer.Option("--status", help="Only this status.")] = None,
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Write the catalog as our CSV plus its images, ready for `catalog import`.

    Photos and masks go into a folder next to the CSV named after it (sheet.csv ->
    sheet-images/).
    """
    folder = file.with_name(f"{file.stem}-images")
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    with (
        open_catalog(db_url) as sessions,
        sessions() as session,
        file.open("w", newline="", encoding="utf-8") as handle,
    ):
        writer = csv.writer(handle)
        writer.writerow(["sku", "name", "category", "image", "mask", "brand", "colour", "tags"])
        for garment in repository.list_garments(session, status=status, with_image_data=True):
            paths = {}
            for kind in ImageKind:
                image = garment.image(kind)
                assert image is not None, "every garment has both images"
                path = folder / f"{_safe(garment.sku)}-{kind.value}{EXTENSIONS[image.mime_type]}"
                path.write_bytes(image.data)
                paths[kind] = path.relative_to(file.parent).as_posix()
            writer.writerow(
                [
                    garment.sku,
                    garment.name,
                    garment.category.value,
                    paths[ImageKind.PHOTO],
                    paths[ImageKind.MASK],
                    garment.brand or "",
                    garment.colour or "",
                    ",".join(garment.tags or []),
                ]
            )
            count += 1
    if as_json:
        print_json({"file": str(file), "images": str(folder), "garments": count})
    else:
        console.print(f"exported {count} garment(s) to {file} (images in {folder})")


def _safe(sku: str) -> str:
    """A file-name-safe form of ``sku``, unique: altered SKUs get a short hash appended."""
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in sku)
    return safe if safe == sku else f"{safe}-{hashlib.sha256(sku.encode()).hexdigest()[:8]}"
