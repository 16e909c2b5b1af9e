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

from sqlalchemy import Float, Integer, and_, case, func, literal, select, union_all
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


def _per_unit(experiment: Experiment, as_of: datetime | None) -> Select:
    """Each exposed unit's arm, items bought ``d``, items returned ``m`` and net revenue.

    A ``UNION ALL`` of plain joins (every exposed unit with zeros, its purchase lines, its
    returns) summed per unit: no aggregate is joined to another, so the plan stays a
    few scans and one aggregation however stale the planner's statistics are.
    """
    exposed = and_(
        Exposure.experiment_id == Purchase.experiment_id,
        Exposure.unit_id == Purchase.unit_id,
        Purchase.purchased_at >= Exposure.first_seen,
    )
    zero, no_money = literal(0, Integer), literal(0.0, Float)
    units = select(
        Exposure.arm_id,
        Exposure.unit_id,
        zero.label("d"),
        zero.label("m"),
        no_money.label("revenue"),
    ).where(Exposure.experiment_id == experiment.id)
    lines = (
        select(
            Exposure.arm_id,
            Exposure.unit_id,
            PurchaseItem.quantity,
            zero,
            PurchaseItem.quantity * PurchaseItem.unit_price,
        )
        .select_from(Purchase)
        .join(Exposure, exposed)
        .join(PurchaseItem, PurchaseItem.purchase_id == Purchase.id)
        .where(Purchase.experiment_id == experiment.id)
    )
    returns = (
        select(
            Exposure.arm_id,
            Exposure.unit_id,
            zero,
            Return.quantity,
            -Return.quantity * PurchaseItem.unit_price,
        )
        .select_from(Return)
        .join(Purchase, Purchase.id == Return.purchase_id)
        .join(Exposure, exposed)
        .join(
            PurchaseItem,
            and_(PurchaseItem.purchase_id == Return.purchase_id, PurchaseItem.sku == Return.sku),
        )
        .where(Purchase.experiment_id == experiment.id)
    )
    if as_of is not None:
        units = units.where(Exposure.first_seen <= as_of)
        lines = lines.where(Purchase.purchased_at <= as_of)
        returns = returns.where(Purchase.purchased_at <= as_of, Return.returned_at <= as_of)
    parts = union_all(units, lines, returns).subquery()
    return select(
        parts.c.arm_id,
        func.sum(parts.c.d).label("d"),
        func.sum(parts.c.m).label("m"),
        func.sum(parts.c.revenue).label("revenue"),
    ).group_by(parts.c.arm_id, parts.c.unit_id)


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
