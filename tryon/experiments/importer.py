"""Importing a store's orders and returns from CSV into an experiment.

The file has a header row and one row per order line or return, with these columns:

=============  ========================================================================
``event_id``   the event's idempotency key; the lines of one order share it
``type``       ``purchase`` or ``return``
``unit_id``    the shopper, as assigned to the experiment
``order_id``   the order
``sku``        the garment bought or returned
``quantity``   a positive whole number of items
``unit_price`` price of one item (purchase rows; empty on return rows)
``time``       ISO 8601, e.g. ``2026-03-01T10:15:00+01:00``; without an offset it is UTC
=============  ========================================================================

Each event is stored in a savepoint of its own: a bad row is reported with its line
number and column, and the rest of the file is still stored. Importing the same file
again stores nothing new (every event is a duplicate).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy.orm import Session

from catalog.errors import RowError
from tryon.experiments.errors import EventError
from tryon.experiments.events import Event, LineItem, Purchase, Return
from tryon.experiments.store import get_experiment, record_events

COLUMNS = ("event_id", "type", "unit_id", "order_id", "sku", "quantity", "unit_price", "time")


@dataclass
class ImportResult:
    """What an import stored, skipped as duplicates, and refused (one error per bad event)."""

    stored: int = 0
    duplicates: int = 0
    unknown_skus: set[str] = field(default_factory=set)
    errors: list[RowError] = field(default_factory=list)


@dataclass
class _Row:
    line: int
    cells: dict[str, str]


def _parse_time(row: _Row) -> datetime:
    text = row.cells["time"].strip()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise RowError(row.line, "time", f"{text!r} is not an ISO 8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _parse_quantity(row: _Row) -> int:
    text = row.cells["quantity"].strip()
    try:
        quantity = int(text)
    except ValueError:
        raise RowError(row.line, "quantity", f"{text!r} is not a whole number") from None
    if quantity <= 0:
        raise RowError(row.line, "quantity", f"must be positive, got {quantity}")
    return quantity


def _parse_price(row: _Row) -> float:
    text = row.cells["unit_price"].strip()
    try:
        price = float(text)
    except ValueError:
        raise RowError(row.line, "unit_price", f"{text!r} is not a number") from None
    if not math.isfinite(price) or price < 0:
        raise RowError(row.line, "unit_price", f"must be 0 or more, got {text}")
    return price


def _build(rows: list[_Row]) -> Event:
    """The event the rows sharing one event_id describe."""
    first = rows[0]
    kind = first.cells["type"].strip().lower()
    if kind not in ("purchase", "return"):
        raise RowError(
            first.line, "type", f"{first.cells['type']!r} is neither purchase nor return"
        )
    for row in rows[1:]:
        for column in ("type", "unit_id", "order_id", "time"):
            if row.cells[column] != first.cells[column]:
                raise RowError(
                    row.line,
                    column,
                    f"differs from line {first.line}, which has the same event_id",
                )
    event_id, unit, order = (first.cells[c].strip() for c in ("event_id", "unit_id", "order_id"))
    time = _parse_time(first)
    if kind == "return":
        if len(rows) > 1:
            raise RowError(rows[1].line, "event_id", "a return event has one row")
        return Return(
            event_id, unit, time, order, first.cells["sku"].strip(), _parse_quantity(first)
        )
    items = tuple(
        LineItem(row.cells["sku"].strip(), _parse_quantity(row), _parse_price(row)) for row in rows
    )
    return Purchase(event_id, unit, time, order, items)


def read_events(text: str) -> tuple[list[tuple[int, Event]], list[RowError]]:
    """The events of a CSV text with the line each starts on, and the rows that are unusable."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")))
    header = next(reader, None)
    if header is None:
        return [], [RowError(1, None, "the file is empty; it needs a header row")]
    header = [h.strip() for h in header]
    missing = [c for c in COLUMNS if c not in header and c != "unit_price"]
    if missing:
        return [], [RowError(1, None, f"missing columns {missing}; expected {list(COLUMNS)}")]
    groups: dict[str, list[_Row]] = {}
    errors: list[RowError] = []
    for cells in reader:
        line = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            errors.append(RowError(line, None, f"has {len(cells)} cells, the header {len(header)}"))
            continue
        row = _Row(line, {c: "" for c in COLUMNS} | dict(zip(header, cells, strict=True)))
        event_id = row.cells["event_id"].strip()
        if not event_id:
            errors.append(RowError(line, "event_id", "is empty"))
            continue
        groups.setdefault(event_id, []).append(row)
    events = []
    for rows in groups.values():
        try:
            events.append((rows[0].line, _build(rows)))
        except RowError as error:
            errors.append(error)
    return events, errors


def import_events(
    session: Session,
    key: str,
    path: Path,
    on_progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Store the events of the CSV file at ``path`` in experiment ``key``, event by event.

    Never commits: the caller's transaction holds the events stored, each in its own
    savepoint so that a refused one leaves the others in place. ``on_progress(done,
    total)`` is told of each event handled.
    """
    get_experiment(session, key)  # an unknown experiment fails the whole import at once
    events, errors = read_events(path.read_text(encoding="utf-8"))
    result = ImportResult(errors=errors)
    for done, (line, event) in enumerate(events, start=1):
        try:
            with session.begin_nested():
                recorded = record_events(session, key, [event])
        except EventError as error:
            result.errors.append(RowError(line, None, str(error)))
        else:
            result.stored += recorded.stored
            result.duplicates += recorded.duplicates
            result.unknown_skus.update(recorded.unknown_skus)
        if on_progress is not None:
            on_progress(done, len(events))
    result.errors.sort(key=lambda error: error.line)
    return result
