"""Realistic shopper traffic for demos and checks: who buys what, who returns what, when.

The model: an exposed shopper buys with probability ``conversion``; a buyer places one
order of ``1 + Poisson(items_per_buyer - 1)`` items spread over the store's SKUs; each
buyer has a return propensity drawn from a Beta distribution with mean ``return_rate``
(times ``1 + effect`` in an arm with a planted effect), so some shoppers return much more
than others (``return_correlation`` is the correlation between two items of the same
shopper being returned); each returned item comes back ``1 +`` an exponential number of
days after the order.

:func:`simulate_arm` draws one arm's sufficient statistics directly (thousands of
experiments per second, for statistical checks); :func:`simulate_traffic` produces the
plain events (:mod:`tryon.experiments.events`) that a store would send, for demos and
end-to-end runs through the store, the CSV importer or the gRPC API.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from tryon.experiments.events import Event, LineItem, Purchase, Return
from tryon.experiments.stats import Proportion, RatioStats, SampleStats

# Item prices are Gamma-distributed with this shape: a long tail of dearer garments.
PRICE_SHAPE = 2.0


@dataclass(frozen=True)
class Shoppers:
    """How a store's shoppers buy and return; the defaults resemble online apparel."""

    return_rate: float = 0.25
    conversion: float = 0.10
    items_per_buyer: float = 2.0
    return_correlation: float = 0.1
    mean_price: float = 40.0
    mean_return_days: float = 7.0
    skus: tuple[str, ...] = field(default_factory=lambda: tuple(f"SKU-{i:04d}" for i in range(50)))

    def __post_init__(self) -> None:
        if not 0 < self.return_rate < 1 or not 0 < self.conversion <= 1:
            raise ValueError("return_rate must be in (0, 1) and conversion in (0, 1]")
        if self.items_per_buyer < 1 or not 0 <= self.return_correlation < 1:
            raise ValueError("items_per_buyer must be >= 1 and return_correlation in [0, 1)")
        if self.mean_return_days < 1:
            raise ValueError("mean_return_days must be at least 1 (returns take a day or more)")


@dataclass(frozen=True)
class ArmSample:
    """One simulated arm's sufficient statistics, as :mod:`~tryon.experiments.aggregates` gives."""

    return_rate: RatioStats
    conversion: Proportion
    revenue_per_unit: SampleStats


@dataclass(frozen=True)
class Buyers:
    """Per-buyer draws: items bought, items returned, and the kept and refunded value."""

    bought: np.ndarray
    returned: np.ndarray
    propensity: np.ndarray
    kept_value: np.ndarray
    refund: np.ndarray


def _propensities(
    rng: np.random.Generator, count: int, mean: float, correlation: float
) -> np.ndarray:
    if correlation == 0:
        return np.full(count, mean)
    # A Beta(a, b) propensity gives two items of a shopper correlation 1 / (a + b + 1).
    concentration = 1 / correlation - 1
    return rng.beta(mean * concentration, (1 - mean) * concentration, size=count)


def draw_buyers(
    rng: np.random.Generator, count: int, shoppers: Shoppers, effect: float = 0.0
) -> Buyers:
    """``count`` buyers' baskets and returns, with return rate ``return_rate * (1 + effect)``."""
    mean = shoppers.return_rate * (1 + effect)
    if not 0 < mean < 1:
        raise ValueError(f"effect {effect} puts the return rate at {mean}, outside (0, 1)")
    bought = 1 + rng.poisson(shoppers.items_per_buyer - 1, size=count)
    propensity = _propensities(rng, count, mean, shoppers.return_correlation)
    returned = rng.binomial(bought, propensity)
    scale = shoppers.mean_price / PRICE_SHAPE
    # A sum of k Gamma(shape, scale) prices is Gamma(k * shape, scale); kept and returned
    # items are independent draws, so each part can be drawn on its own.
    kept = bought - returned
    kept_value = np.where(kept > 0, rng.gamma(np.maximum(kept, 1) * PRICE_SHAPE, scale), 0.0)
    refund = np.where(returned > 0, rng.gamma(np.maximum(returned, 1) * PRICE_SHAPE, scale), 0.0)
    return Buyers(bought, returned, propensity, kept_value, refund)


def simulate_arm(
    rng: np.random.Generator, units: int, shoppers: Shoppers, effect: float = 0.0
) -> ArmSample:
    """One arm of ``units`` exposed shoppers, straight to sufficient statistics.

    ``effect`` is the relative change of the return rate in this arm (-0.1: a tenth fewer).
    Shoppers who buy nothing add to ``n`` and nothing to the sums.
    """
    count = int(rng.binomial(units, shoppers.conversion))
    buyers = draw_buyers(rng, count, shoppers, effect)
    d = buyers.bought.astype(float)
    m = buyers.returned.astype(float)
    revenue = buyers.kept_value
    return ArmSample(
        return_rate=RatioStats(
            units, m.sum(), (m * m).sum(), d.sum(), (d * d).sum(), (m * d).sum()
        ),
        conversion=Proportion(units, count),
        revenue_per_unit=SampleStats(units, revenue.sum(), (revenue * revenue).sum()),
    )


@dataclass(frozen=True)
class Traffic:
    """Simulated traffic: when each shopper was first exposed, and their events in time order."""

    exposures: list[tuple[str, datetime]]
    events: list[Event]


def simulate_traffic(
    arm_of: Callable[[str], str | None],
    units: int,
    start: datetime,
    days: float = 14.0,
    shoppers: Shoppers | None = None,
    effects: Mapping[str, float] | None = None,
    seed: int = 0,
) -> Traffic:
    """Shoppers ``unit-0 ... unit-{units-1}`` exposed over ``days`` from ``start``, with events.

    ``arm_of`` says each unit's arm (the store's ``assign``, the gRPC ``Assign``, or the
    hashing alone); ``effects`` maps arm names to their relative change of the return rate.
    Orders fall within ``days`` of ``start``; returns may come later. Units ``arm_of`` puts
    in no arm still shop, with no effect.
    """
    shoppers = shoppers or Shoppers()
    effects = effects or {}
    rng = np.random.default_rng(seed)
    end = start + timedelta(days=days)
    prices = rng.gamma(PRICE_SHAPE * 4, shoppers.mean_price / (PRICE_SHAPE * 4), len(shoppers.skus))
    exposures: list[tuple[str, datetime]] = []
    events: list[Event] = []
    for index in range(units):
        unit = f"unit-{index}"
        seen = start + timedelta(days=float(rng.uniform(0, days)))
        exposures.append((unit, seen))
        arm = arm_of(unit)
        if rng.random() >= shoppers.conversion:
            continue
        buyer = draw_buyers(rng, 1, shoppers, effects.get(arm, 0.0) if arm else 0.0)
        bought_at = min(seen + timedelta(hours=float(rng.exponential(12))), end)
        events.extend(_order_events(rng, unit, bought_at, buyer, shoppers, prices))
    events.sort(key=lambda event: (event.time, isinstance(event, Return)))
    return Traffic(exposures, events)


def _order_events(
    rng: np.random.Generator,
    unit: str,
    bought_at: datetime,
    buyer: Buyers,
    shoppers: Shoppers,
    prices: np.ndarray,
) -> list[Event]:
    """One buyer's purchase event and a return event per SKU they send items of back."""
    order = f"order-{unit}"
    picks = rng.integers(0, len(shoppers.skus), size=int(buyer.bought[0]))
    lines = Counter(shoppers.skus[i] for i in picks)
    items = tuple(
        LineItem(sku, qty, round(float(prices[shoppers.skus.index(sku)]), 2))
        for sku, qty in sorted(lines.items())
    )
    events: list[Event] = [Purchase(f"{order}-purchase", unit, bought_at, order, items)]
    item_skus = [shoppers.skus[i] for i in picks]
    sent_back = Counter(rng.permutation(item_skus)[: int(buyer.returned[0])].tolist())
    for sku, quantity in sorted(sent_back.items()):
        delay = 1 + float(rng.exponential(shoppers.mean_return_days - 1))
        events.append(
            Return(
                f"{order}-return-{sku}",
                unit,
                bought_at + timedelta(days=delay),
                order,
                sku,
                quantity,
            )
        )
    return events
