"""Erasure requests: `forget_unit` and `tryon ab forget` remove a shopper from every
experiment and leave everyone else as they were."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from catalog.database import create_catalog_engine, make_sessionmaker, upgrade
from catalog.models import Base
from tryon.cli import app
from tryon.errors import InvalidInputError
from tryon.experiments.events import LineItem, Purchase, Return
from tryon.experiments.report import build_report
from tryon.experiments.store import (
    assign,
    create_experiment,
    forget_unit,
    record_events,
    record_tryon,
    start_experiment,
)

START = datetime(2026, 3, 1, tzinfo=timezone.utc)
KEYS = ("fit-spring", "fit-summer")
UNITS = ("shopper-gone", "shopper-stays")


def _shop(session: Session) -> None:
    """Two running experiments; both shoppers are exposed to both, buy and return in
    both, and had one try-on."""
    for key in KEYS:
        create_experiment(session, key, [("control", 50), ("tryon", 50)])
        start_experiment(session, key, at=START)
        for unit in UNITS:
            assign(session, key, unit, at=START)
            bought = START + timedelta(days=1)
            order = f"{key}-{unit}-order"
            record_events(
                session,
                key,
                [
                    Purchase(
                        f"{order}-p",
                        unit,
                        bought,
                        order,
                        (LineItem("TOP-1", 2, 20.0), LineItem("TOP-2", 1, 30.0)),
                    ),
                    Return(f"{order}-r", unit, bought + timedelta(days=3), order, "TOP-1", 1),
                ],
            )
    for unit in UNITS:  # try-ons belong to no one experiment: each report counts them
        record_tryon(session, f"{unit}-tryon", "TOP-1", unit, at=START)


def _rows_of(session: Session, unit: str) -> dict[str, int]:
    """Rows naming `unit` in every table that has a unit_id column, by table."""
    counts = {}
    for table in Base.metadata.sorted_tables:
        if "unit_id" in table.c:
            query = select(func.count()).select_from(table).where(table.c.unit_id == unit)
            counts[table.name] = session.scalar(query)
    return counts


def _units_in_reports(session: Session) -> list[int]:
    return [sum(arm["units"] for arm in build_report(session, key)["arms"]) for key in KEYS]


def test_forget_erases_the_unit_from_every_experiment_and_nobody_else(
    sessions: sessionmaker[Session],
):
    with sessions.begin() as session:
        _shop(session)
        stays_before = _rows_of(session, "shopper-stays")
        assert _units_in_reports(session) == [2, 2]
    with sessions.begin() as session:
        forgotten = forget_unit(session, "shopper-gone")
    assert (forgotten.exposures, forgotten.events, forgotten.purchases) == (2, 4, 2)
    assert (forgotten.purchase_items, forgotten.returns, forgotten.tryons) == (4, 2, 1)
    with sessions.begin() as session:
        assert set(_rows_of(session, "shopper-gone").values()) == {0}
        assert _rows_of(session, "shopper-stays") == stays_before
        # Item lines and returns carry no unit id: only the other shopper's are left.
        for key, report in ((key, build_report(session, key)) for key in KEYS):
            arms = report["arms"]
            assert sum(arm["units"] for arm in arms) == 1, key
            assert sum(arm["items_bought"] for arm in arms) == 3
            assert sum(arm["items_returned"] for arm in arms) == 1
            assert sum(arm["tryons"] for arm in arms) == 1
    with sessions.begin() as session:
        assert forget_unit(session, "shopper-gone").total == 0  # asking twice is fine


def test_forget_refuses_an_empty_unit_id(sessions: sessionmaker[Session]):
    with sessions.begin() as session, pytest.raises(InvalidInputError, match="unit_id"):
        forget_unit(session, "")


@pytest.fixture()
def shop_url(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    engine = create_catalog_engine(url)
    upgrade(engine)
    with make_sessionmaker(engine).begin() as session:
        _shop(session)
    engine.dispose()
    return url


def _units_left(url: str) -> list[int]:
    engine = create_catalog_engine(url)
    try:
        with make_sessionmaker(engine).begin() as session:
            return _units_in_reports(session)
    finally:
        engine.dispose()


def test_forget_command_asks_first_and_reports_what_it_erased(shop_url):
    runner = CliRunner()
    declined = runner.invoke(
        app, ["ab", "forget", "shopper-gone", "--db-url", shop_url], input="n\n"
    )
    assert declined.exit_code == 1 and "cannot be undone" in declined.output
    assert _units_left(shop_url) == [2, 2]

    erased = runner.invoke(
        app, ["ab", "forget", "shopper-gone", "--db-url", shop_url, "--yes", "--json"]
    )
    assert erased.exit_code == 0, erased.output
    assert json.loads(erased.stdout) == {
        "unit_id": "shopper-gone",
        "exposures": 2,
        "events": 4,
        "purchases": 2,
        "purchase_items": 4,
        "returns": 2,
        "tryons": 1,
        "total": 15,
    }
    assert _units_left(shop_url) == [1, 1]

    again = runner.invoke(app, ["ab", "forget", "shopper-gone", "--db-url", shop_url, "-y"])
    assert again.exit_code == 0 and "nothing erased" in again.output
