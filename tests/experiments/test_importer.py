"""Importing orders and returns from CSV: per-row errors with line numbers, idempotent."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tryon.experiments.errors import ExperimentNotFoundError
from tryon.experiments.importer import import_events
from tryon.experiments.report import build_report
from tryon.experiments.store import assign, create_experiment, start_experiment

KEY = "tryon-returns"
HEADER = "event_id,type,unit_id,order_id,sku,quantity,unit_price,time\n"
GOOD = (
    "p1,purchase,u1,o1,TOP-1,2,19.90,2026-03-02T10:00:00+01:00\n"
    "p1,purchase,u1,o1,DRESS-2,1,49.00,2026-03-02T10:00:00+01:00\n"
    "r1,return,u1,o1,TOP-1,1,,2026-03-09T12:00:00Z\n"
)


@pytest.fixture
def running(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """A running experiment whose shopper u1 is exposed."""
    with sessions.begin() as session:
        create_experiment(session, KEY, [("control", 1), ("tryon", 1)])
        start_experiment(session, KEY, at=datetime(2026, 3, 1, tzinfo=timezone.utc))
        assign(session, KEY, "u1", at=datetime(2026, 3, 1, 12, tzinfo=timezone.utc))
    return sessions


def _import(sessions: sessionmaker[Session], path: Path):  # noqa: ANN202
    with sessions.begin() as session:
        return import_events(session, KEY, path)


def test_multi_item_orders_and_returns_import_once(running, tmp_path: Path) -> None:  # noqa: ANN001
    path = tmp_path / "events.csv"
    path.write_text(HEADER + GOOD)
    first = _import(running, path)
    assert (first.stored, first.duplicates, first.errors) == (2, 0, [])
    assert first.unknown_skus == {"TOP-1", "DRESS-2"}
    again = _import(running, path)
    assert (again.stored, again.duplicates) == (0, 2)
    with running() as session:
        arm = next(a for a in build_report(session, KEY)["arms"] if a["units"])
    assert (arm["items_bought"], arm["items_returned"]) == (3, 1)


def test_bad_rows_are_reported_by_line_and_the_rest_is_stored(running, tmp_path: Path) -> None:  # noqa: ANN001
    path = tmp_path / "events.csv"
    path.write_text(
        HEADER
        + GOOD
        + "p2,purchase,u1,o2,TOP-1,-1,19.90,2026-03-03T10:00:00Z\n"  # line 5
        + "p3,purchase,u1,o3,TOP-1,1,19.90,yesterday\n"  # line 6
        + "r2,return,u1,o1,TOP-1,5,,2026-03-10T10:00:00Z\n"  # line 7
        + "x1,exchange,u1,o1,TOP-1,1,,2026-03-10T10:00:00Z\n"  # line 8
        + "p4,purchase,u1,o4,TOP-1,1\n"  # line 9
        + "p5,purchase,u1,o5,TOP-1,1,9.5,2026-03-04T10:00:00Z\n"  # line 10
        + "p5,purchase,u2,o5,HAT-1,1,9.5,2026-03-04T10:00:00Z\n"  # line 11
    )
    result = _import(running, path)
    assert result.stored == 2
    found = [(e.line, e.column) for e in result.errors]
    assert found == [
        (5, "quantity"),
        (6, "time"),
        (7, None),
        (8, "type"),
        (9, None),
        (11, "unit_id"),
    ]
    assert "event 'r2'" in str(result.errors[2]) and "bought 2" in str(result.errors[2])
    assert str(result.errors[0]).startswith("line 5, column quantity: must be positive")


def test_missing_columns_are_named(running, tmp_path: Path) -> None:  # noqa: ANN001
    path = tmp_path / "events.csv"
    path.write_text("event_id,unit_id\np1,u1\n")
    result = _import(running, path)
    assert result.stored == 0
    assert "missing columns ['type', 'order_id', 'sku', 'quantity', 'time']" in str(
        result.errors[0]
    )


def test_unknown_experiment_stops_the_import(sessions, tmp_path: Path) -> None:  # noqa: ANN001
    path = tmp_path / "events.csv"
    path.write_text(HEADER + GOOD)
    with sessions.begin() as session, pytest.raises(ExperimentNotFoundError):
        import_events(session, "nope", path)
