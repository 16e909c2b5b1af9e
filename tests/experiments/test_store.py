"""Experiments in the database: lifecycle, sticky assignment, idempotent and checked events."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from catalog.models import Category, Garment, Status
from tryon.experiments.errors import (
    EventError,
    ExperimentDefinitionError,
    ExperimentExistsError,
    ExperimentNotFoundError,
    ExperimentStateError,
)
from tryon.experiments.events import LineItem, Purchase, Return
from tryon.experiments.hashing import bucket, bucket_ranges, choose_arm
from tryon.experiments.store import (
    assign,
    create_experiment,
    get_experiment,
    list_experiments,
    record_events,
    record_tryon,
    start_experiment,
    stop_experiment,
)
from tryon.experiments.tables import ExperimentEvent, ExperimentStatus, Exposure
from tryon.experiments.tables import Return as ReturnRow

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)
KEY = "tryon-returns"


@pytest.fixture
def running(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """The database with a running 50/50 experiment and one garment in the catalog."""
    with sessions.begin() as session:
        create_experiment(session, KEY, [("control", 50), ("tryon", 50)])
        start_experiment(session, KEY, at=T0)
        session.add(
            Garment(
                sku="TOP-1",
                name="Top",
                category=Category.TOP,
                status=Status.ACTIVE,
                tags=[],
            )
        )
    return sessions


def _purchase(event_id: str, unit: str = "u1", order: str = "o1", hours: int = 1, **items: int):
    lines = tuple(LineItem(sku, qty, 20.0) for sku, qty in (items or {"TOP-1": 2}).items())
    return Purchase(event_id, unit, T0 + timedelta(hours=hours), order, lines)


def _return(event_id: str, quantity: int = 1, sku: str = "TOP-1", order: str = "o1", unit="u1"):
    return Return(event_id, unit, T0 + timedelta(days=3), order, sku, quantity)


def _count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_lifecycle_draft_running_stopped(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        experiment = create_experiment(session, "exp-a", [("control", 1), ("tryon", 3)], seed="s")
        assert [a.weight for a in experiment.arms] == [0.25, 0.75]
        assert experiment.status is ExperimentStatus.DRAFT
        with pytest.raises(ExperimentStateError, match="only a running one can stop"):
            stop_experiment(session, "exp-a")
        start_experiment(session, "exp-a", at=T0)
        with pytest.raises(ExperimentStateError, match="only a draft can start"):
            start_experiment(session, "exp-a")
        stop_experiment(session, "exp-a", at=T0 + timedelta(days=14))
    with sessions.begin() as session:
        loaded = get_experiment(session, "exp-a")
        assert loaded.status is ExperimentStatus.STOPPED
        assert loaded.stopped_at - loaded.started_at == timedelta(days=14)
        assert [e.key for e in list_experiments(session)] == ["exp-a"]


@pytest.mark.parametrize(
    ("arms", "kwargs", "error", "message"),
    [
        ([("control", 1)], {}, ExperimentDefinitionError, "2 or more arms"),
        ([("a", 1), ("a", 1)], {}, ExperimentDefinitionError, "must differ"),
        ([("a", 1), ("b", 0)], {}, ExperimentDefinitionError, "positive"),
        ([("a b", 1), ("c", 1)], {}, ExperimentDefinitionError, "letters, digits"),
        ([("a", 1), ("b", 1)], {"coverage": 0}, ExperimentDefinitionError, "coverage"),
    ],
)
def test_bad_definitions_are_refused(sessions, arms, kwargs, error, message) -> None:  # noqa: ANN001
    with sessions.begin() as session, pytest.raises(error, match=message):
        create_experiment(session, "exp", arms, **kwargs)


def test_keys_are_unique_and_unknown_keys_say_how_to_create(running) -> None:  # noqa: ANN001
    with running.begin() as session:
        with pytest.raises(ExperimentExistsError, match="pick another key"):
            create_experiment(session, KEY, [("a", 1), ("b", 1)])
        with pytest.raises(ExperimentNotFoundError, match="tryon ab create nope"):
            assign(session, "nope", "u1")


def test_assignment_is_the_hashed_arm_and_sticky(running) -> None:  # noqa: ANN001
    ranges = bucket_ranges(2, 1.0, [0.5, 0.5])
    with running.begin() as session:
        for i in range(200):
            unit = f"shopper-{i}"
            first = assign(session, KEY, unit, at=T0)
            assert first.in_experiment
            assert first.bucket == bucket(KEY, unit)
            assert first.arm == ["control", "tryon"][choose_arm(first.bucket, ranges)]
            assert assign(session, KEY, unit) == first
        assert _count(session, Exposure) == 200


def test_coverage_leaves_units_out_and_records_no_exposure(running) -> None:  # noqa: ANN001
    with running.begin() as session:
        create_experiment(session, "half", [("control", 1), ("tryon", 1)], coverage=0.5)
        start_experiment(session, "half")
        results = [assign(session, "half", f"u{i}") for i in range(400)]
        inside = sum(r.in_experiment for r in results)
        assert 150 < inside < 250
        assert all(r.arm is None for r in results if not r.in_experiment)
        assert _count(session, Exposure) == inside


def test_stopped_and_draft_experiments_assign_nobody(running) -> None:  # noqa: ANN001
    with running.begin() as session:
        create_experiment(session, "draft", [("control", 1), ("tryon", 1)])
        assert not assign(session, "draft", "u1").in_experiment
        stop_experiment(session, KEY)
        assert assign(session, KEY, "u1") == assign(session, KEY, "u1")
        assert not assign(session, KEY, "u1").in_experiment
        assert _count(session, Exposure) == 0


def test_events_are_stored_once_per_event_id(running) -> None:  # noqa: ANN001
    with running.begin() as session:
        assign(session, KEY, "u1", at=T0)
        first = record_events(session, KEY, [_purchase("e1"), _return("e2", 2)])
        assert (first.stored, first.duplicates, first.unexposed) == (2, 0, 0)
    with running.begin() as session:
        # A client retrying the whole batch: both are duplicates, the full return too.
        again = record_events(session, KEY, [_purchase("e1"), _return("e2", 2)])
        assert (again.stored, again.duplicates) == (0, 2)
        assert _count(session, ExperimentEvent) == 2
        assert _count(session, ReturnRow) == 1


def test_unknown_skus_are_stored_and_flagged(running) -> None:  # noqa: ANN001
    with running.begin() as session:
        result = record_events(session, KEY, [_purchase("e1", **{"TOP-1": 1, "MYSTERY-9": 1})])
        assert result.stored == 1
        assert result.unknown_skus == ("MYSTERY-9",)
        assert result.unexposed == 1  # u1 was never assigned


@pytest.mark.parametrize(
    ("events", "message"),
    [
        ([_return("r1")], "return for order 'o1', which experiment 'tryon-returns' has no"),
        ([_purchase("p1"), _return("r1", 3)], "returns 3 of 'TOP-1' but order 'o1' bought 2"),
        ([_purchase("p1"), _return("r1", 2), _return("r2", 1)], "2 were already returned"),
        ([_purchase("p1"), _return("r1", sku="OTHER")], "has no SKU 'OTHER'"),
        ([_purchase("p1"), _return("r1", unit="u2")], "was bought by unit 'u1'"),
        ([_purchase("p1", **{"TOP-1": 0})], "positive whole number, got 0"),
        ([_purchase("p1", **{"TOP-1": -2})], "positive whole number, got -2"),
        ([_purchase("p1"), _purchase("p2")], "order 'o1' was already recorded by event 'p1'"),
        ([_purchase("p1", hours=-1)], "before experiment 'tryon-returns' started"),
    ],
)
def test_bad_events_are_named_and_roll_back_the_batch(running, events, message) -> None:  # noqa: ANN001
    with pytest.raises(EventError, match=message) as caught, running.begin() as session:
        record_events(session, KEY, events)
    assert caught.value.event_id == events[-1].event_id
    with running.begin() as session:
        assert _count(session, ExperimentEvent) == 0


def test_stopped_experiment_refuses_later_purchases_but_takes_returns(running) -> None:  # noqa: ANN001
    with running.begin() as session:
        record_events(session, KEY, [_purchase("p1", hours=1)])
        stop_experiment(session, KEY, at=T0 + timedelta(days=1))
    with running.begin() as session:
        record_events(session, KEY, [_return("r1")])  # three days later: still counts
    with pytest.raises(EventError, match="stopped at .* not part of it"), running.begin() as s:
        record_events(s, KEY, [_purchase("p2", order="o2", hours=30)])


def test_draft_experiment_takes_no_events(running) -> None:  # noqa: ANN001
    with running.begin() as session:
        create_experiment(session, "draft", [("control", 1), ("tryon", 1)])
        with pytest.raises(EventError, match="has not started"):
            record_events(session, "draft", [_purchase("p1")])


def test_events_without_timezone_are_refused(running) -> None:  # noqa: ANN001
    naive = Purchase("p1", "u1", datetime(2026, 3, 2), "o1", (LineItem("TOP-1", 1, 5.0),))
    with running.begin() as session, pytest.raises(EventError, match="no timezone"):
        record_events(session, KEY, [naive])


def test_tryons_are_counted_once(running) -> None:  # noqa: ANN001
    with running.begin() as session:
        assert record_tryon(session, "t-1", "TOP-1", unit_id="u1")
        assert not record_tryon(session, "t-1", "TOP-1", unit_id="u1")


@pytest.mark.postgres
@pytest.mark.parametrize("_migrated_engine", ["postgresql"], indirect=True)
def test_concurrent_writers_store_each_event_once(running) -> None:  # noqa: ANN001
    # 8 clients send overlapping batches (every order twice) and race to return the
    # same order's items; exactly the unique events are stored, never more returns than bought.
    with running.begin() as session:
        for unit in range(8):
            assign(session, KEY, f"u{unit}", at=T0)
    barrier = threading.Barrier(8)

    def client(worker: int) -> tuple[int, int, int]:
        barrier.wait()
        stored = duplicates = refused = 0
        for round_ in range(20):
            unit = f"u{round_ % 8}"  # every client sends the same order
            batch = [_purchase(f"p-{unit}-{round_}", unit, f"o-{unit}-{round_}")]
            with running.begin() as session:
                result = record_events(session, KEY, batch)
            stored, duplicates = stored + result.stored, duplicates + result.duplicates
            try:
                with running.begin() as session:
                    record_events(
                        session, KEY, [_return(f"r-{worker}-{round_}", 1, "TOP-1", "o-u0-0", "u0")]
                    )
            except EventError:
                refused += 1
        return stored, duplicates, refused

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(client, range(8)))
    assert sum(r[0] for r in results) == 20
    assert sum(r[1] for r in results) == 8 * 20 - 20
    with running.begin() as session:
        assert session.scalar(select(func.sum(ReturnRow.quantity))) == 2
    assert sum(r[2] for r in results) == 8 * 20 - 2
