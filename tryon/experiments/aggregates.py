"""An experiment's sufficient statistics per arm, computed in SQL.

The database does the work: one query sums each exposed unit's items bought, items
returned and net revenue (``GROUP BY`` unit), and sums those per arm (``GROUP BY`` arm),
so a report reads a handful of rows whatever the number of events. Only purchases from a
unit's first exposure on count (what a shopper bought before seeing an arm is not that
arm's doing); returns count whenever they arrive, since they belong to their order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, case, distinct, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from catalog.models import Garment
from tryon.experiments.stats import Proportion, RatioStats, SampleStats
from tryon.experiments.tables import (
    Experiment,
    ExperimentEvent,
    Exposure,
    Purchase,
    PurchaseItem,
    Return,
    TryOn,
)


@dataclass(frozen=True)
class ArmStats:
    """One arm's totals and the sufficient statistics its tests need."""

    name: str
    weight: float
    units: int
    buyers: int
    items_bought: int
    items_returned: int
    revenue: float
    tryons: int
    return_rate: RatioStats
    conversion: Proportion
    revenue_per_unit: SampleStats


def _exposed_purchases(experiment: Experiment, as_of: datetime | None) -> Select:
    """Purchases by exposed units from their first exposure on, up to ``as_of``."""
    exposed = and_(
        Exposure.experiment_id == Purchase.experiment_id, Exposure.unit_id == Purchase.unit_id
    )
    query = (
        select(Purchase.id, Purchase.unit_id)
        .join(Exposure, exposed)
        .where(
            Purchase.experiment_id == experiment.id, Purchase.purchased_at >= Exposure.first_seen
        )
    )
    if as_of is not None:
        query = query.where(Purchase.purchased_at <= as_of)
    return query


def _per_unit(experiment: Experiment, as_of: datetime | None) -> Select:
    purchases = _exposed_purchases(experiment, as_of).subquery()
    bought = (
        select(
            purchases.c.unit_id,
            func.sum(PurchaseItem.quantity).label("d"),
            func.sum(PurchaseItem.quantity * PurchaseItem.unit_price).label("gross"),
        )
        .join(PurchaseItem, PurchaseItem.purchase_id == purchases.c.id)
        .group_by(purchases.c.unit_id)
        .subquery()
    )
    returns = (
        select(
            purchases.c.unit_id,
            func.sum(Return.quantity).label("m"),
            func.sum(Return.quantity * PurchaseItem.unit_price).label("refund"),
        )
        .join(Return, Return.purchase_id == purchases.c.id)
        .join(
            PurchaseItem,
            and_(PurchaseItem.purchase_id == Return.purchase_id, PurchaseItem.sku == Return.sku),
        )
    )
    if as_of is not None:
        returns = returns.where(Return.returned_at <= as_of)
    returned = returns.group_by(purchases.c.unit_id).subquery()
    d = func.coalesce(bought.c.d, 0)
    m = func.coalesce(returned.c.m, 0)
    revenue = func.coalesce(bought.c.gross, 0.0) - func.coalesce(returned.c.refund, 0.0)
    query = (
        select(Exposure.arm_id, d.label("d"), m.label("m"), revenue.label("revenue"))
        .outerjoin(bought, bought.c.unit_id == Exposure.unit_id)
        .outerjoin(returned, returned.c.unit_id == Exposure.unit_id)
        .where(Exposure.experiment_id == experiment.id)
    )
    if as_of is not None:
        query = query.where(Exposure.first_seen <= as_of)
    return query


def _tryons_per_arm(session: Session, experiment: Experiment, as_of: datetime | None) -> dict:
    query = (
        select(Exposure.arm_id, func.count(TryOn.id))
        .join(TryOn, TryOn.unit_id == Exposure.unit_id)
        .where(Exposure.experiment_id == experiment.id, TryOn.created_at >= Exposure.first_seen)
        .group_by(Exposure.arm_id)
    )
    until = min((t for t in (as_of, experiment.stopped_at) if t is not None), default=None)
    if until is not None:
        query = query.where(TryOn.created_at <= until)
    return dict(session.execute(query).tuples().all())


def arm_stats(
    session: Session, experiment: Experiment, as_of: datetime | None = None
) -> list[ArmStats]:
    """Each arm's statistics (in arm order), counting what happened up to ``as_of``."""
    unit = _per_unit(experiment, as_of).subquery()
    query = select(
        unit.c.arm_id,
        func.count(),
        func.sum(case((unit.c.d > 0, 1), else_=0)),
        func.sum(unit.c.d),
        func.sum(unit.c.d * unit.c.d),
        func.sum(unit.c.m),
        func.sum(unit.c.m * unit.c.m),
        func.sum(unit.c.m * unit.c.d),
        func.sum(unit.c.revenue),
        func.sum(unit.c.revenue * unit.c.revenue),
    ).group_by(unit.c.arm_id)
    rows = {row[0]: row[1:] for row in session.execute(query)}
    tryons = _tryons_per_arm(session, experiment, as_of)
    result = []
    for arm in experiment.arms:
        n, buyers, d, d2, m, m2, md, revenue, revenue2 = rows.get(arm.id) or (
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0.0,
            0.0,
        )
        n, buyers, d, d2, m, m2, md = (int(v or 0) for v in (n, buyers, d, d2, m, m2, md))
        revenue, revenue2 = float(revenue or 0.0), float(revenue2 or 0.0)
        result.append(
            ArmStats(
                name=arm.name,
                weight=arm.weight,
                units=n,
                buyers=buyers,
                items_bought=d,
                items_returned=m,
                revenue=revenue,
                tryons=tryons.get(arm.id, 0),
                return_rate=RatioStats(n, m, m2, d, d2, md),
                conversion=Proportion(n, buyers),
                revenue_per_unit=SampleStats(n, revenue, revenue2),
            )
        )
    return result


def unknown_skus(session: Session, experiment: Experiment) -> list[str]:
    """SKUs bought in the experiment that the catalog does not have, sorted."""
    query = (
        select(distinct(PurchaseItem.sku))
        .join(Purchase, Purchase.id == PurchaseItem.purchase_id)
        .where(
            Purchase.experiment_id == experiment.id,
            PurchaseItem.sku.not_in(select(Garment.sku)),
        )
        .order_by(PurchaseItem.sku)
    )
    return list(session.scalars(query))


def last_event_time(session: Session, experiment: Experiment) -> datetime | None:
    """When the experiment's latest exposure or event happened, or ``None`` without any."""
    event = session.scalar(
        select(func.max(ExperimentEvent.occurred_at)).where(
            ExperimentEvent.experiment_id == experiment.id
        )
    )
    exposure = session.scalar(
        select(func.max(Exposure.first_seen)).where(Exposure.experiment_id == experiment.id)
    )
    times = [t for t in (event, exposure) if t is not None]
    return max(times) if times else None


def arm_stats_over_time(
    session: Session, experiment: Experiment, points: int = 30
) -> list[tuple[datetime, list[ArmStats]]]:
    """Cumulative arm statistics at up to ``points`` evenly spaced times since the start.

    The last time is the latest exposure or event (returns keep arriving after a stop).
    One grouped query per time: fine for daily points of experiments of any size.
    """
    start = experiment.started_at
    end = last_event_time(session, experiment)
    if start is None or end is None or end <= start:
        return []
    step = (end - start) / points
    return [
        (start + step * i, arm_stats(session, experiment, start + step * i))
        for i in range(1, points + 1)
    ]
