"""The statistics hold up on simulated experiments, and simulated traffic looks like a store's."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from tryon.experiments.events import Purchase, Return, check_event
from tryon.experiments.simulation import Shoppers, simulate_arm, simulate_traffic
from tryon.experiments.stats import mean_test, plan, proportion_test, ratio_test, srm_p_value

RUNS = 1_000


def test_aa_intervals_cover_zero_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(2026)
    shoppers = Shoppers()
    covered: Counter[str] = Counter()
    for _ in range(RUNS):
        a, b = simulate_arm(rng, 4_000, shoppers), simulate_arm(rng, 4_000, shoppers)
        results = {
            "return_rate": ratio_test(a.return_rate, b.return_rate, relative=False),
            "return_rate_relative": ratio_test(a.return_rate, b.return_rate),
            "conversion": proportion_test(a.conversion, b.conversion),
            "revenue_per_unit": mean_test(a.revenue_per_unit, b.revenue_per_unit),
        }
        covered.update(name for name, r in results.items() if r.ci_low <= 0 <= r.ci_high)
    for name in ("return_rate", "return_rate_relative", "conversion", "revenue_per_unit"):
        assert 0.93 <= covered[name] / RUNS <= 0.97, name


def test_srm_check_fires_about_once_in_a_thousand_fair_splits() -> None:
    rng = np.random.default_rng(7)
    draws = 5_000
    fired = sum(
        srm_p_value(rng.multinomial(20_000, [0.3, 0.7]).tolist(), [0.3, 0.7]) < 0.001
        for _ in range(draws)
    )
    assert fired / draws <= 0.003


@pytest.mark.parametrize("correlation", [0.0, 0.15])
def test_power_at_the_planned_size_is_the_planned_power(correlation: float) -> None:
    shoppers = Shoppers(return_correlation=correlation)
    planned = plan(
        shoppers.return_rate,
        0.10,
        items_per_buyer=shoppers.items_per_buyer,
        conversion=shoppers.conversion,
        return_correlation=correlation,
    )
    rng = np.random.default_rng(11)
    significant = 0
    for _ in range(RUNS):
        control = simulate_arm(rng, planned.shoppers_per_arm, shoppers)
        treatment = simulate_arm(rng, planned.shoppers_per_arm, shoppers, effect=-0.10)
        significant += ratio_test(control.return_rate, treatment.return_rate).p_value < 0.05
    assert significant / RUNS == pytest.approx(0.80, abs=0.05)


def test_traffic_has_multi_item_orders_and_late_returns_by_choosy_shoppers() -> None:
    start = datetime(2026, 3, 1, tzinfo=timezone.utc)
    traffic = simulate_traffic(lambda unit: "control", 20_000, start, days=14, seed=3)
    purchases = [e for e in traffic.events if isinstance(e, Purchase)]
    returns = [e for e in traffic.events if isinstance(e, Return)]
    for event in traffic.events:
        check_event(event)
    assert len({e.event_id for e in traffic.events}) == len(traffic.events)
    assert len(purchases) == pytest.approx(2_000, rel=0.1)
    sizes = [sum(i.quantity for i in p.items) for p in purchases]
    assert np.mean(sizes) == pytest.approx(2.0, rel=0.1)
    assert max(sizes) >= 4
    bought_at = {p.order_id: p.time for p in purchases}
    delays = [r.time - bought_at[r.order_id] for r in returns]
    assert min(delays) >= timedelta(days=1)
    assert np.mean([d.days for d in delays]) == pytest.approx(6.5, abs=1.0)
    assert all(start <= p.time <= start + timedelta(days=14) for p in purchases)
    returned = sum(r.quantity for r in returns)
    assert returned / sum(sizes) == pytest.approx(0.25, abs=0.03)


def test_shoppers_differ_in_how_much_they_return() -> None:
    # Two items of one shopper are both returned with probability E[p^2] = rho p (1-p) + p^2:
    # 0.119 with rho = 0.3, against 0.0625 were items returned independently.
    start = datetime(2026, 3, 1, tzinfo=timezone.utc)
    shoppers = Shoppers(return_correlation=0.3)
    traffic = simulate_traffic(lambda unit: None, 40_000, start, shoppers=shoppers, seed=4)
    returned_items: Counter[str] = Counter()
    for event in traffic.events:
        if isinstance(event, Return):
            returned_items[event.order_id] += event.quantity
    pairs = [
        e
        for e in traffic.events
        if isinstance(e, Purchase) and sum(i.quantity for i in e.items) == 2
    ]
    both = sum(returned_items[p.order_id] == 2 for p in pairs) / len(pairs)
    assert both == pytest.approx(0.3 * 0.25 * 0.75 + 0.25**2, abs=0.025)


def test_planted_effect_shows_in_the_planted_arm_only() -> None:
    start = datetime(2026, 3, 1, tzinfo=timezone.utc)
    traffic = simulate_traffic(
        lambda unit: "tryon" if int(unit.split("-")[1]) % 2 else "control",
        40_000,
        start,
        shoppers=Shoppers(return_correlation=0.0),
        effects={"tryon": -0.5},
        seed=5,
    )
    bought: Counter[str] = Counter()
    returned: Counter[str] = Counter()
    for event in traffic.events:
        arm = "tryon" if int(event.unit_id.split("-")[1]) % 2 else "control"
        if isinstance(event, Purchase):
            bought[arm] += sum(i.quantity for i in event.items)
        else:
            returned[arm] += event.quantity
    assert returned["control"] / bought["control"] == pytest.approx(0.25, abs=0.02)
    assert returned["tryon"] / bought["tryon"] == pytest.approx(0.125, abs=0.02)
