"""Importing a parsed CSV: prepare every row's images, then write rows in transactions.

Images are decoded and masks extracted in worker processes; the main process writes.
Rows are written in batches, one transaction per batch and a savepoint per row, so a
row is all-or-nothing, a bad row never takes good ones down with it, and an import
killed halfway leaves only whole garments behind. Because it commits batch by batch,
:func:`run_import` owns its transactions, like a CLI command does.
"""

from __future__ import annotations

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
from catalog.onboarding import make_fields, prepare_images, read_file
from catalog.repository import GarmentFields, GarmentImages, SaveOutcome, save_garment

ROWS_PER_TRANSACTION = 25
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
    """Every row's result, in file order, and the totals the summary shows."""

    results: list[RowResult] = field(default_factory=list)

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
    """The bytes of the file that ``row``'s ``field_name`` cell names, or a RowError."""
    source = getattr(row, field_name)
    try:
        return read_file(resolve_source(source, base), field_name)
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
        return row.error("mask" if error.part == "mask" else "image", str(error))
    return PreparedRow(row, fields, prepared.images, prepared.warnings)


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


def _write(session: Session, prepared: PreparedRow, activate: bool) -> RowResult:
    row = prepared.row
    try:
        with session.begin_nested():
            _, outcome = save_garment(session, prepared.fields, prepared.images, activate=activate)
    except SQLAlchemyError as error:
        detail = getattr(error, "orig", None) or error
        reason = f"the database refused the row ({type(error).__name__}: {detail})"
        return RowResult(row.line, row.sku, None, row.error(None, reason))
    return RowResult(row.line, row.sku, outcome, warnings=prepared.warnings)


def run_import(
    sessions: sessionmaker[Session],
    parsed: ParsedFile,
    base: Path,
    *,
    activate: bool = False,
    dry_run: bool = False,
    jobs: int = 1,
    on_row: Callable[[RowResult], None] | None = None,
) -> ImportReport:
    """Import ``parsed`` (image paths relative to ``base``) and report on every row.

    ``dry_run`` does all the checking and rolls every write back. ``on_row`` is called
    after each row (for a progress bar), rows that failed parsing included.
    """
    report = ImportReport()

    def record(result: RowResult) -> None:
        report.results.append(result)
        if on_row is not None:
            on_row(result)

    for error in parsed.errors:
        record(RowResult(error.line, None, None, error))
    prepared_rows = _prepare_all(parsed.rows, base, jobs)
    pending = True
    while pending:
        with sessions() as session, session.begin() as transaction:
            for count, (row, prepared) in enumerate(prepared_rows, start=1):
                if isinstance(prepared, RowError):
                    record(RowResult(row.line, row.sku, None, prepared))
                else:
                    record(_write(session, prepared, activate))
                if count == ROWS_PER_TRANSACTION:
                    break
            else:
                pending = False
            if dry_run:
                transaction.rollback()
    report.results.sort(key=lambda r: r.line)
    return report
