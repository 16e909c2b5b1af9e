"""Importing a parsed CSV: download, prepare every row's images, then write rows in transactions.

Image cells that are ``http(s)`` URLs are downloaded first, all at once and concurrently
(catalog.fetching); a row whose download fails is reported and not written. Images are
decoded and masks extracted in worker processes; the main process writes.
Rows are written in batches, one transaction per batch and a savepoint per row, so a
row is all-or-nothing, a bad row never takes good ones down with it, and an import
killed halfway leaves only whole garments behind. Because it commits batch by batch,
:func:`run_import` owns its transactions, like a CLI command does.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from catalog.csvfiles import ImportRow, ParsedFile, resolve_source
from catalog.errors import FieldError, ImageError, RowError
from catalog.fetching import FetchedImage, FetchError, FetchSettings, fetch_images, is_url
from catalog.onboarding import make_fields, prepare_images, read_file
from catalog.repository import GarmentFields, GarmentImages, SaveOutcome, save_garment
from catalog.weights import ServingWeights

ROWS_PER_TRANSACTION = 25
IMAGE_FIELDS = ("image", "mask")
PARALLEL_FROM_ROWS = 16  # below this, starting worker processes costs more than it saves


@dataclass(frozen=True)
class PreparedRow:
    """A row whose text and images all checked out, ready to write."""

    row: ImportRow
    fields: GarmentFields
    images: GarmentImages
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class RowResult:
    """What happened to one row: an outcome, or the error that failed it."""

    line: int
    sku: str | None
    outcome: SaveOutcome | None
    error: RowError | None = None
    warnings: tuple[str, ...] = ()


@dataclass
class ImportReport:
    """Every row's result, in file order, the totals the summary shows, and how many
    image URLs were ``downloaded``, found unchanged in the cache (``cached``) or ``failed``."""

    results: list[RowResult] = field(default_factory=list)
    downloads: dict[str, int] = field(
        default_factory=lambda: {"downloaded": 0, "cached": 0, "failed": 0}
    )

    @property
    def counts(self) -> dict[str, int]:
        """Rows per outcome: added, updated, unchanged, failed."""
        tally = Counter(r.outcome.value if r.outcome else "failed" for r in self.results)
        return {name: tally.get(name, 0) for name in ("added", "updated", "unchanged", "failed")}

    @property
    def failed(self) -> list[RowResult]:
        """The rows that did not go in."""
        return [r for r in self.results if r.error is not None]


def _read(row: ImportRow, field_name: str, base: Path) -> bytes:
    """The bytes of the file (or download) that ``row``'s ``field_name`` cell names, or a
    RowError."""
    downloaded = row.downloaded.get(field_name)
    try:
        if downloaded is not None:
            return read_file(Path(downloaded), field_name)
        return read_file(resolve_source(getattr(row, field_name), base), field_name)
    except (ValueError, ImageError) as error:
        raise row.error(field_name, str(error)) from None


def prepare_row(row: ImportRow, base: Path) -> PreparedRow | RowError:
    """Check one row's values and images; never raises for bad input, returns the error."""
    try:
        fields = make_fields(row.sku, row.name, row.category, row.brand, row.colour, row.tags)
        photo_data = _read(row, "image", base)
        mask_data = _read(row, "mask", base) if row.mask else None
        prepared = prepare_images(photo_data, mask_data)
    except RowError as error:
        return error
    except FieldError as error:
        return row.error(error.field, error.reason)
    except ImageError as error:
        field_name = "mask" if error.part == "mask" else "image"
        source = getattr(row, field_name)
        # A bad download names its URL: the cell alone may not tell which image it was.
        reason = f"{source}: {error}" if field_name in row.downloaded else str(error)
        return row.error(field_name, reason)
    return PreparedRow(row, fields, prepared.images, prepared.warnings)


def remote_urls(rows: list[ImportRow]) -> list[str]:
    """The ``http(s)`` URLs that ``rows``' image and mask cells name, each once."""
    cells = (getattr(row, name) for row in rows for name in IMAGE_FIELDS)
    return list(dict.fromkeys(cell for cell in cells if cell and is_url(cell)))


def _download_all(
    rows: list[ImportRow],
    settings: FetchSettings,
    report: ImportReport,
    on_fetched: Callable[[FetchedImage | FetchError], None] | None,
) -> tuple[list[ImportRow], list[RowResult]]:
    """Download every URL the rows name; rows pointed at their downloads, and the results
    of rows whose download failed."""
    fetched = fetch_images(remote_urls(rows), settings, on_fetched=on_fetched)
    for result in fetched.values():
        outcome = "failed" if isinstance(result, FetchError) else "cached"
        if isinstance(result, FetchedImage) and not result.from_cache:
            outcome = "downloaded"
        report.downloads[outcome] += 1
    ready, failed = [], []
    for row in rows:
        downloaded: dict[str, str] = {}
        for name in IMAGE_FIELDS:
            cell = getattr(row, name)
            result = fetched.get(cell) if cell else None
            if isinstance(result, FetchError):
                failed.append(RowResult(row.line, row.sku, None, row.error(name, str(result))))
                break
            if result is not None:
                downloaded[name] = str(result.path)
        else:
            ready.append(dataclasses.replace(row, downloaded=downloaded) if downloaded else row)
    return ready, failed


def _prepare_all(
    rows: list[ImportRow], base: Path, jobs: int
) -> Iterator[tuple[ImportRow, PreparedRow | RowError]]:
    """Each row with its preparation, in file order; ``jobs`` worker processes for long files."""
    if jobs <= 1 or len(rows) < PARALLEL_FROM_ROWS:
        yield from ((row, prepare_row(row, base)) for row in rows)
        return
    with multiprocessing.get_context().Pool(jobs) as pool:
        yield from zip(rows, pool.imap(_PrepareInFolder(base), rows, chunksize=4), strict=True)


@dataclass(frozen=True)
class _PrepareInFolder:
    """``prepare_row`` with the CSV's folder bound, picklable for worker processes."""

    base: Path

    def __call__(self, row: ImportRow) -> PreparedRow | RowError:
        return prepare_row(row, self.base)


def default_jobs() -> int:
    """Worker processes for image preparation: one per CPU this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _write(
    session: Session, prepared: PreparedRow, activate: bool, weights: ServingWeights | None
) -> RowResult:
    row = prepared.row
    warnings = prepared.warnings
    category_warning = weights.warning(prepared.fields.category) if weights else None
    if category_warning is not None:
        warnings = (category_warning, *warnings)
    try:
        with session.begin_nested():
            _, outcome = save_garment(session, prepared.fields, prepared.images, activate=activate)
    except SQLAlchemyError as error:
        detail = getattr(error, "orig", None) or error
        reason = f"the database refused the row ({type(error).__name__}: {detail})"
        return RowResult(row.line, row.sku, None, row.error(None, reason))
    return RowResult(row.line, row.sku, outcome, warnings=warnings)


def run_import(
    sessions: sessionmaker[Session],
    parsed: ParsedFile,
    base: Path,
    *,
    activate: bool = False,
    dry_run: bool = False,
    jobs: int = 1,
    fetch: FetchSettings | None = None,
    weights: ServingWeights | None = None,
    on_row: Callable[[RowResult], None] | None = None,
    on_fetched: Callable[[FetchedImage | FetchError], None] | None = None,
) -> ImportReport:
    """Import ``parsed`` (image paths relative to ``base``) and report on every row.

    ``dry_run`` does all the checking and rolls every write back. Image URLs are
    downloaded with ``fetch`` (default: settings from the environment). Rows whose
    category ``weights`` cannot dress get a warning. ``on_row`` is called after each row
    (for a progress bar), rows that failed parsing included; ``on_fetched`` after each
    image URL.
    """
    report = ImportReport()

    def record(result: RowResult) -> None:
        report.results.append(result)
        if on_row is not None:
            on_row(result)

    for error in parsed.errors:
        record(RowResult(error.line, None, None, error))
    rows = parsed.rows
    if remote_urls(rows):
        settings = fetch or FetchSettings.from_environ(os.environ)
        rows, failed = _download_all(rows, settings, report, on_fetched)
        for result in failed:
            record(result)
    prepared_rows = _prepare_all(rows, base, jobs)
    pending = True
    while pending:
        with sessions() as session, session.begin() as transaction:
            for count, (row, prepared) in enumerate(prepared_rows, start=1):
                if isinstance(prepared, RowError):
                    record(RowResult(row.line, row.sku, None, prepared))
                else:
                    record(_write(session, prepared, activate, weights))
                if count == ROWS_PER_TRANSACTION:
                    break
            else:
                pending = False
            if dry_run:
                transaction.rollback()
    report.results.sort(key=lambda r: r.line)
    return report
