"""An experiment's sufficient statistics per arm, computed in SQL.

The database does the work: one query sums each buying unit's items bought, items
returned and net revenue (``GROUP BY`` unit), and sums those per arm (``GROUP BY`` arm);
another counts each arm's exposed units (those who bought nothing add zero to every sum).
A report reads a handful of rows whatever the number of events. Only purchases from a
unit's first exposure on count (what a shopper bought before seeing an arm is not that
arm's doing); returns count whenever they arrive, since they belong to their order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Integer, and_, case, func, literal, select, union_all
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


def _per_buyer(experiment: Experiment, as_of: datetime | None) -> Select:
    """Each unit that bought since its exposure: its arm, items bought ``d``, items
    returned ``m`` and net revenue.

    A ``UNION ALL`` of plain joins (purchase lines, returns with their line's price) joined
    once to the exposures and summed per exposure: no aggregate is joined to another, and
    the units that bought nothing (most of them) never reach the grouping, since they add
    zero to every sum; :func:`_units_per_arm` counts them.
    """
    zero = literal(0, Integer)
    lines = (
        select(
            Purchase.unit_id,
            Purchase.purchased_at,
            PurchaseItem.quantity.label("d"),
            zero.label("m"),
            (PurchaseItem.quantity * PurchaseItem.unit_price).label("revenue"),
        )
        .join(PurchaseItem, PurchaseItem.purchase_id == Purchase.id)
        .where(Purchase.experiment_id == experiment.id)
    )
    returns = (
        select(
            Purchase.unit_id,
            Purchase.purchased_at,
            zero,
            Return.quantity,
            -Return.quantity * PurchaseItem.unit_price,
        )
        .select_from(Return)
        .join(Purchase, Purchase.id == Return.purchase_id)
        .join(
            PurchaseItem,
            and_(PurchaseItem.purchase_id == Return.purchase_id, PurchaseItem.sku == Return.sku),
        )
        .where(Purchase.experiment_id == experiment.id)
    )
    if as_of is not None:
        lines = lines.where(Purchase.purchased_at <= as_of)
        returns = returns.where(Purchase.purchased_at <= as_of, Return.returned_at <= as_of)
    parts = union_all(lines, returns).subquery()
    exposed = and_(
        Exposure.experiment_id == experiment.id,
        Exposure.unit_id == parts.c.unit_id,
        parts.c.purchased_at >= Exposure.first_seen,
    )
    return (
        select(
            Exposure.arm_id,
            func.sum(parts.c.d).label("d"),
            func.sum(parts.c.m).label("m"),
            func.sum(parts.c.revenue).label("revenue"),
        )
        .select_from(parts)
        .join(Exposure, exposed)
        # The exposure's integer id stands for the unit: cheaper to group than its text id.
        .group_by(Exposure.arm_id, Exposure.id)
    )


def _units_per_arm(session: Session, experiment: Experiment, as_of: datetime | None) -> dict:
    query = (
        select(Exposure.arm_id, func.count())
        .where(Exposure.experiment_id == experiment.id)
        .group_by(Exposure.arm_id)
    )
    if as_of is not None:
        query = query.where(Exposure.first_seen <= as_of)
    return {arm_id: count for arm_id, count in session.execute(query)}


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
    return {arm_id: count for arm_id, count in session.execute(query)}


def arm_stats(
    session: Session, experiment: Experiment, as_of: datetime | None = None
) -> list[ArmStats]:
    """Each arm's statistics (in arm order), counting what happened up to ``as_of``."""
    buyer = _per_buyer(experiment, as_of).subquery()
    query = select(
        buyer.c.arm_id,
        func.sum(case((buyer.c.d > 0, 1), else_=0)),
        func.sum(buyer.c.d),
        func.sum(buyer.c.d * buyer.c.d),
        func.sum(buyer.c.m),
        func.sum(buyer.c.m * buyer.c.m),
        func.sum(buyer.c.m * buyer.c.d),
        func.sum(buyer.c.revenue),
        func.sum(buyer.c.revenue * buyer.c.revenue),
    ).group_by(buyer.c.arm_id)
    rows = {row[0]: row[1:] for row in session.execute(query)}
    units = _units_per_arm(session, experiment, as_of)
    tryons = _tryons_per_arm(session, experiment, as_of)
    result = []
    for arm in experiment.arms:
        n = units.get(arm.id, 0)
        buyers, d, d2, m, m2, md, revenue, revenue2 = rows.get(arm.id) or (0,) * 8
        buyers, d, d2, m, m2, md = (int(v or 0) for v in (buyers, d, d2, m, m2, md))
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
        select(PurchaseItem.sku)
        .distinct()
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
    times = [start + step * i for i in range(1, points)] + [end]
    return [(time, arm_stats(session, experiment, time)) for time in times]
