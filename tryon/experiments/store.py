"""Experiments in the database: define, start and stop them, assign units, record events.

Every function takes a :class:`~sqlalchemy.orm.Session` and never commits: the service
call, the CLI command or the importer that uses it owns the transaction
(``with session.begin():``), so an error rolls back everything the call wrote.

Writes are safe with many writers on PostgreSQL: exposures and events are inserted with
``INSERT ... ON CONFLICT DO NOTHING`` on their unique keys, so two replicas recording the
same exposure or a client retrying the same event store it once; a return locks its
order's row while it checks how many items are left to return.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Table, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, selectinload

from catalog.models import Garment, utcnow
from tryon.experiments.errors import (
    EventError,
    ExperimentDefinitionError,
    ExperimentExistsError,
    ExperimentNotFoundError,
    ExperimentStateError,
)
from tryon.experiments.events import Event, Purchase, Return, check_event
from tryon.experiments.hashing import HASH_VERSIONS, bucket, bucket_ranges, choose_arm
from tryon.experiments.tables import (
    ID_LENGTH,
    KEY_LENGTH,
    EventKind,
    Experiment,
    ExperimentArm,
    ExperimentEvent,
    ExperimentStatus,
    Exposure,
    PurchaseItem,
    TryOn,
)
from tryon.experiments.tables import Purchase as PurchaseRow
from tryon.experiments.tables import Return as ReturnRow

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class Assignment:
    """Which arm a unit is in; ``arm`` is ``None`` when the unit is not in the experiment."""

    arm: str | None
    in_experiment: bool
    bucket: float


@dataclass(frozen=True)
class RecordResult:
    """What recording a batch of events did.

    ``unknown_skus`` were stored but are not in the catalog (reports flag them);
    ``unexposed`` counts purchases by units never assigned to an arm, which the analysis
    leaves out.
    """

    stored: int
    duplicates: int
    unknown_skus: tuple[str, ...] = ()
    unexposed: int = 0


@dataclass(frozen=True)
class Forgotten:
    """What erasing one unit removed, in rows per table, over every experiment."""

    unit_id: str
    exposures: int
    events: int
    purchases: int
    purchase_items: int
    returns: int
    tryons: int

    @property
    def total(self) -> int:
        """Rows removed in all."""
        return (
            self.exposures
            + self.events
            + self.purchases
            + self.purchase_items
            + self.returns
            + self.tryons
        )


def _check_name(what: str, name: str) -> None:
    if len(name) > KEY_LENGTH or not _NAME.fullmatch(name):
        raise ExperimentDefinitionError(
            f"{what} {name!r} must be 1 to {KEY_LENGTH} letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )


def create_experiment(
    session: Session,
    key: str,
    arms: Sequence[tuple[str, float]],
    seed: str | None = None,
    coverage: float = 1.0,
    hash_version: int = 2,
) -> Experiment:
    """Define a draft experiment; arms are ``(name, weight)`` with the control arm first.

    Weights are relative (``[("control", 50), ("tryon", 50)]``) and are stored divided by
    their sum, as GrowthBook expects them. The seed defaults to the key.
    """
    _check_name("experiment key", key)
    if len(arms) < 2:
        raise ExperimentDefinitionError(f"an experiment needs 2 or more arms, got {len(arms)}")
    names = [name for name, _ in arms]
    for name in names:
        _check_name("arm name", name)
    if len(set(names)) != len(names):
        raise ExperimentDefinitionError(f"arm names must differ, got {names}")
    total = sum(weight for _, weight in arms)
    if any(weight <= 0 for _, weight in arms) or total <= 0:
        raise ExperimentDefinitionError(f"arm weights must be positive, got {list(arms)}")
    if not 0 < coverage <= 1:
        raise ExperimentDefinitionError(f"coverage must be in (0, 1], got {coverage}")
    if hash_version not in HASH_VERSIONS:
        raise ExperimentDefinitionError(
            f"unknown hash version {hash_version}, supported: {list(HASH_VERSIONS)}"
        )
    seed = key if seed is None else seed
    if len(seed) > KEY_LENGTH:
        raise ExperimentDefinitionError(f"seed must have at most {KEY_LENGTH} characters")
    if session.scalar(select(Experiment.id).where(Experiment.key == key)) is not None:
        raise ExperimentExistsError(f"an experiment with the key {key!r} exists; pick another key")
    experiment = Experiment(
        key=key,
        seed=seed,
        hash_version=hash_version,
        coverage=coverage,
        status=ExperimentStatus.DRAFT,
        arms=[
            ExperimentArm(position=i, name=name, weight=weight / total)
            for i, (name, weight) in enumerate(arms)
        ],
    )
    session.add(experiment)
    session.flush()
    return experiment


def get_experiment(session: Session, key: str, lock: bool = False) -> Experiment:
    """The experiment with ``key`` and its arms; :class:`ExperimentNotFoundError` if none."""
    query = select(Experiment).where(Experiment.key == key).options(selectinload(Experiment.arms))
    if lock:
        query = query.with_for_update()
    experiment = session.scalar(query)
    if experiment is None:
        raise ExperimentNotFoundError(key)
    return experiment


def list_experiments(session: Session) -> list[Experiment]:
    """Every experiment, newest first."""
    query = (
        select(Experiment)
        .options(selectinload(Experiment.arms))
        .order_by(Experiment.created_at.desc(), Experiment.id.desc())
    )
    return list(session.scalars(query))


def start_experiment(session: Session, key: str, at: datetime | None = None) -> Experiment:
    """Start a draft experiment: from now on it assigns units and takes purchases."""
    experiment = get_experiment(session, key, lock=True)
    if experiment.status is not ExperimentStatus.DRAFT:
        raise ExperimentStateError(
            f"experiment {key!r} is {experiment.status.value}; only a draft can start "
            "(create a new experiment to run it again)"
        )
    experiment.status = ExperimentStatus.RUNNING
    experiment.started_at = at or utcnow()
    session.flush()
    return experiment


def stop_experiment(session: Session, key: str, at: datetime | None = None) -> Experiment:
    """Stop a running experiment: no new exposures or purchases; returns still count."""
    experiment = get_experiment(session, key, lock=True)
    if experiment.status is not ExperimentStatus.RUNNING:
        raise ExperimentStateError(
            f"experiment {key!r} is {experiment.status.value}; only a running one can stop"
        )
    experiment.status = ExperimentStatus.STOPPED
    experiment.stopped_at = at or utcnow()
    session.flush()
    return experiment


def _insert_new(session: Session, table: Table, values: dict) -> int | None:
    """Insert a row unless it breaks a unique key; its id, or ``None`` if it was there."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        statement = postgresql.insert(table)
    elif dialect == "sqlite":
        statement = sqlite.insert(table)
    else:
        raise ExperimentStateError(
            f"experiments need PostgreSQL or SQLite, not {dialect}; set TRYON_DATABASE_URL"
        )
    statement = statement.values(**values).on_conflict_do_nothing().returning(table.c.id)
    return session.execute(statement).scalar_one_or_none()


def assign(session: Session, key: str, unit_id: str, at: datetime | None = None) -> Assignment:
    """The unit's arm in experiment ``key``, recording its first exposure if it is in.

    Sticky: once exposed, a unit keeps its arm whatever happens to coverage later.
    Draft and stopped experiments assign nobody.
    """
    if not unit_id or len(unit_id) > ID_LENGTH:
        raise ExperimentDefinitionError(f"unit_id must have 1 to {ID_LENGTH} characters")
    experiment = get_experiment(session, key)
    unit_bucket = bucket(experiment.seed, unit_id, experiment.hash_version)
    if experiment.status is not ExperimentStatus.RUNNING:
        return Assignment(None, False, unit_bucket)
    arm = _exposed_arm(session, experiment, unit_id)
    if arm is None:
        ranges = bucket_ranges(
            len(experiment.arms), experiment.coverage, [a.weight for a in experiment.arms]
        )
        index = choose_arm(unit_bucket, ranges)
        if index is None:
            return Assignment(None, False, unit_bucket)
        _insert_new(
            session,
            Exposure.__table__,
            {
                "experiment_id": experiment.id,
                "arm_id": experiment.arms[index].id,
                "unit_id": unit_id,
                "bucket": unit_bucket,
                "first_seen": at or utcnow(),
            },
        )
        # Another replica may have exposed the unit first; its row is the one that counts.
        arm = _exposed_arm(session, experiment, unit_id)
    return Assignment(arm, True, unit_bucket)


def _exposed_arm(session: Session, experiment: Experiment, unit_id: str) -> str | None:
    query = (
        select(ExperimentArm.name)
        .join(Exposure, Exposure.arm_id == ExperimentArm.id)
        .where(Exposure.experiment_id == experiment.id, Exposure.unit_id == unit_id)
    )
    return session.scalar(query)


def record_events(session: Session, key: str, events: Iterable[Event]) -> RecordResult:
    """Store a batch of events of experiment ``key``, each once per ``event_id``.

    A repeated ``event_id`` is counted as a duplicate and changes nothing (the first
    version stays). Any unusable event raises :class:`EventError` naming it; the caller's
    transaction then rolls back the whole batch.
    """
    experiment = get_experiment(session, key)
    stored = duplicates = unexposed = 0
    unknown: set[str] = set()
    for event in events:
        check_event(event)
        if experiment.status is ExperimentStatus.DRAFT:
            raise EventError(event.event_id, f"experiment {key!r} has not started; start it first")
        event_row = _insert_new(
            session,
            ExperimentEvent.__table__,
            {
                "experiment_id": experiment.id,
                "event_id": event.event_id,
                "kind": EventKind.PURCHASE if isinstance(event, Purchase) else EventKind.RETURN,
                "unit_id": event.unit_id,
                "occurred_at": event.time,
                "recorded_at": utcnow(),
            },
        )
        if event_row is None:
            duplicates += 1
            continue
        if isinstance(event, Purchase):
            unknown.update(_store_purchase(session, experiment, event, event_row))
            unexposed += _exposed_arm(session, experiment, event.unit_id) is None
        else:
            _store_return(session, experiment, event, event_row)
        stored += 1
    return RecordResult(stored, duplicates, tuple(sorted(unknown)), unexposed)


def _store_purchase(
    session: Session, experiment: Experiment, event: Purchase, event_row: int
) -> set[str]:
    """Store the order and its lines; the SKUs among them the catalog does not know."""
    time = event.time
    assert experiment.started_at is not None
    if time < experiment.started_at:
        raise EventError(
            event.event_id,
            f"purchase at {time.isoformat()} is before experiment {experiment.key!r} "
            f"started ({experiment.started_at.isoformat()})",
        )
    if experiment.stopped_at is not None and time > experiment.stopped_at:
        raise EventError(
            event.event_id,
            f"experiment {experiment.key!r} stopped at {experiment.stopped_at.isoformat()}; "
            f"a purchase at {time.isoformat()} is not part of it",
        )
    purchase_id = _insert_new(
        session,
        PurchaseRow.__table__,
        {
            "experiment_id": experiment.id,
            "event_row_id": event_row,
            "order_id": event.order_id,
            "unit_id": event.unit_id,
            "purchased_at": time,
        },
    )
    if purchase_id is None:
        earlier = session.scalar(
            select(ExperimentEvent.event_id)
            .join(PurchaseRow, PurchaseRow.event_row_id == ExperimentEvent.id)
            .where(
                PurchaseRow.experiment_id == experiment.id,
                PurchaseRow.order_id == event.order_id,
            )
        )
        raise EventError(
            event.event_id,
            f"order {event.order_id!r} was already recorded by event {earlier!r}; "
            "send each order once, retries with the same event_id",
        )
    session.execute(
        PurchaseItem.__table__.insert(),
        [
            {
                "purchase_id": purchase_id,
                "sku": item.sku,
                "quantity": item.quantity,
                "unit_price": item.unit_price,
            }
            for item in event.items
        ],
    )
    skus = {item.sku for item in event.items}
    known = set(session.scalars(select(Garment.sku).where(Garment.sku.in_(skus))))
    return skus - known


def _store_return(session: Session, experiment: Experiment, event: Return, event_row: int) -> None:
    # Lock the order so two concurrent returns cannot both take its last items.
    purchase = session.execute(
        select(PurchaseRow.id, PurchaseRow.unit_id, PurchaseRow.purchased_at)
        .where(
            PurchaseRow.experiment_id == experiment.id,
            PurchaseRow.order_id == event.order_id,
        )
        .with_for_update()
    ).one_or_none()
    if purchase is None:
        raise EventError(
            event.event_id,
            f"return for order {event.order_id!r}, which experiment {experiment.key!r} has no "
            "purchase of; record the purchase first",
        )
    if purchase.unit_id != event.unit_id:
        raise EventError(
            event.event_id,
            f"return names unit {event.unit_id!r} but order {event.order_id!r} "
            f"was bought by unit {purchase.unit_id!r}",
        )
    if event.time < purchase.purchased_at:
        raise EventError(
            event.event_id,
            f"return at {event.time.isoformat()} is before order {event.order_id!r} "
            f"was bought ({purchase.purchased_at.isoformat()})",
        )
    bought = session.scalar(
        select(PurchaseItem.quantity).where(
            PurchaseItem.purchase_id == purchase.id, PurchaseItem.sku == event.sku
        )
    )
    if bought is None:
        raise EventError(
            event.event_id, f"order {event.order_id!r} has no SKU {event.sku!r} to return"
        )
    returned = session.scalar(
        select(func.coalesce(func.sum(ReturnRow.quantity), 0)).where(
            ReturnRow.purchase_id == purchase.id, ReturnRow.sku == event.sku
        )
    )
    if returned + event.quantity > bought:
        raise EventError(
            event.event_id,
            f"returns {event.quantity} of {event.sku!r} but order {event.order_id!r} bought "
            f"{bought} and {returned} were already returned",
        )
    session.execute(
        ReturnRow.__table__.insert().values(
            event_row_id=event_row,
            purchase_id=purchase.id,
            sku=event.sku,
            quantity=event.quantity,
            returned_at=event.time,
        )
    )


def record_tryon(
    session: Session,
    tryon_id: str,
    sku: str,
    unit_id: str | None = None,
    at: datetime | None = None,
) -> bool:
    """Count one try-on served (``False`` if ``tryon_id`` was recorded already)."""
    values = {"tryon_id": tryon_id, "sku": sku, "unit_id": unit_id, "created_at": at or utcnow()}
    return _insert_new(session, TryOn.__table__, values) is not None


def forget_unit(session: Session, unit_id: str) -> Forgotten:
    """Erase everything stored about the unit ``unit_id`` in every experiment (an erasure
    request): its exposures, purchase and return events, orders with their lines, returns
    of those orders, and the try-ons served to it.

    Reports computed afterwards no longer count the unit at all: not among an arm's units,
    buyers, items or try-ons, nor in the SRM check. Erasing a unit that has nothing stored
    removes nothing and is not an error. The experiments themselves stay.
    """
    if not unit_id or len(unit_id) > ID_LENGTH:
        raise ExperimentDefinitionError(f"unit_id must have 1 to {ID_LENGTH} characters")
    purchases = select(PurchaseRow.id).where(PurchaseRow.unit_id == unit_id)
    # Children first, so that it works with and without enforced foreign keys.
    returns = _delete(session, ReturnRow, ReturnRow.purchase_id.in_(purchases))
    items = _delete(session, PurchaseItem, PurchaseItem.purchase_id.in_(purchases))
    return Forgotten(
        unit_id=unit_id,
        returns=returns,
        purchase_items=items,
        purchases=_delete(session, PurchaseRow, PurchaseRow.unit_id == unit_id),
        events=_delete(session, ExperimentEvent, ExperimentEvent.unit_id == unit_id),
        exposures=_delete(session, Exposure, Exposure.unit_id == unit_id),
        tryons=_delete(session, TryOn, TryOn.unit_id == unit_id),
    )


def _delete(session: Session, model: type, condition: ColumnElement[bool]) -> int:
    """Delete the rows of ``model`` that meet ``condition``; how many went."""
    statement = delete(model).where(condition).execution_options(synchronize_session=False)
    return session.execute(statement).rowcount
