"""Reports from the database agree with a computation of our own on the same traffic."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from experiment_databases import BACKENDS, postgres_schema_url
from sqlalchemy.orm import Session, sessionmaker

from catalog.database import create_catalog_engine, make_sessionmaker, upgrade
from catalog.models import Category, Garment, Status
from tryon.experiments.aggregates import arm_stats, arm_stats_over_time
from tryon.experiments.events import Purchase, Return
from tryon.experiments.hashing import bucket, bucket_ranges, choose_arm
from tryon.experiments.html import render_html
from tryon.experiments.report import build_report, srm_verdict, summary
from tryon.experiments.simulation import Shoppers, Traffic, simulate_traffic
from tryon.experiments.stats import RatioStats
from tryon.experiments.store import (
    assign,
    create_experiment,
    get_experiment,
    record_events,
    record_tryon,
    start_experiment,
    stop_experiment,
)

KEY = "tryon-returns"
START = datetime(2026, 3, 1, tzinfo=timezone.utc)
SHOPPERS = Shoppers(conversion=0.3, return_correlation=0.2)


def _arm_of(unit: str) -> str | None:
    index = choose_arm(bucket(KEY, unit), bucket_ranges(2, 0.9, [0.5, 0.5]))
    return None if index is None else ["control", "tryon"][index]


@pytest.fixture(scope="module", params=BACKENDS)
def experiment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[sessionmaker[Session], Traffic]]:
    """A stopped experiment with 2,000 simulated shoppers, try-on lowering returns by 40%.

    Built once per backend in a database of its own; tests only read it.
    """
    if request.param == "sqlite":
        urls: Iterator[str] = iter([f"sqlite:///{tmp_path_factory.mktemp('report') / 'r.db'}"])
    else:
        urls = postgres_schema_url()
    engine = create_catalog_engine(next(urls))
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    traffic = simulate_traffic(
        _arm_of, 2_000, START, days=14, shoppers=SHOPPERS, effects={"tryon": -0.4}, seed=1
    )
    with sessions.begin() as session:
        create_experiment(session, KEY, [("control", 1), ("tryon", 1)], coverage=0.9)
        start_experiment(session, KEY, at=START)
        # Half the SKUs are in the catalog; the rest must be flagged.
        for sku in SHOPPERS.skus[::2]:
            session.add(
                Garment(sku=sku, name=sku, category=Category.TOP, status=Status.ACTIVE, tags=[])
            )
        for unit, seen in traffic.exposures:
            assert assign(session, KEY, unit, at=seen).arm == _arm_of(unit)
            if unit.endswith("7"):
                record_tryon(session, f"tryon-{unit}", SHOPPERS.skus[0], unit, seen)
        purchases = [e for e in traffic.events if isinstance(e, Purchase)]
        record_events(session, KEY, purchases)
        stop_experiment(session, KEY, at=START + timedelta(days=14))
    with sessions.begin() as session:
        record_events(session, KEY, [e for e in traffic.events if isinstance(e, Return)])
    yield sessions, traffic
    engine.dispose()
    next(urls, None)  # drops the PostgreSQL schema


def _own_per_unit(traffic: Traffic) -> dict[str, dict[str, list[float]]]:
    """Per arm: each exposed unit's items bought, items returned and net revenue."""
    price = {}
    units: dict[str, list[float]] = {u: [0, 0, 0.0] for u, _ in traffic.exposures if _arm_of(u)}
    for event in traffic.events:
        if event.unit_id not in units:
            continue
        row = units[event.unit_id]
        if isinstance(event, Purchase):
            for item in event.items:
                price[(event.order_id, item.sku)] = item.unit_price
                row[0] += item.quantity
                row[2] += item.quantity * item.unit_price
        else:
            row[1] += event.quantity
            row[2] -= event.quantity * price[(event.order_id, event.sku)]
    arms: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for unit, (d, m, revenue) in units.items():
        arm = arms[_arm_of(unit)]
        arm["d"].append(d)
        arm["m"].append(m)
        arm["revenue"].append(revenue)
    return arms


def test_sql_statistics_equal_our_own_sums(experiment) -> None:  # noqa: ANN001
    sessions, traffic = experiment
    own = _own_per_unit(traffic)
    with sessions() as session:
        arms = arm_stats(session, get_experiment(session, KEY))
    for arm in arms:
        d, m, revenue = own[arm.name]["d"], own[arm.name]["m"], own[arm.name]["revenue"]
        expected = RatioStats(
            len(d),
            sum(m),
            sum(x * x for x in m),
            sum(d),
            sum(x * x for x in d),
            sum(x * y for x, y in zip(m, d, strict=True)),
        )
        assert arm.return_rate == expected
        assert arm.buyers == sum(x > 0 for x in d)
        assert arm.revenue_per_unit.sum == pytest.approx(sum(revenue))
        assert arm.revenue_per_unit.sum_squares == pytest.approx(sum(x * x for x in revenue))
        assert arm.tryons == sum(
            1 for u, _ in traffic.exposures if u.endswith("7") and _arm_of(u) == arm.name
        )


def test_report_json_has_the_documented_shape_and_finds_the_effect(experiment) -> None:  # noqa: ANN001
    sessions, _ = experiment
    with sessions() as session:
        report = json.loads(json.dumps(build_report(session, KEY)))
    assert list(report) == ["experiment", "srm_p_value", "arms", "comparisons", "unknown_skus"]
    assert report["experiment"] == KEY
    assert [a["name"] for a in report["arms"]] == ["control", "tryon"]
    assert set(report["arms"][0]) == {
        "name", "units", "buyers", "items_bought", "items_returned",
        "return_rate", "conversion", "revenue_per_unit", "tryons",
    }  # fmt: skip
    assert [(c["arm"], c["metric"]) for c in report["comparisons"]] == [
        ("tryon", "return_rate"),
        ("tryon", "conversion"),
        ("tryon", "revenue_per_unit"),
    ]
    return_rate = report["comparisons"][0]
    assert set(return_rate["absolute"]) == {"effect", "ci_low", "ci_high", "p_value"}
    # A planted 40% drop from 25%: the interval excludes zero and holds the truth (-0.1).
    assert return_rate["absolute"]["ci_high"] < 0
    assert return_rate["relative"]["ci_low"] < -0.4 < return_rate["relative"]["ci_high"]
    assert report["srm_p_value"] > 0.001
    assert report["unknown_skus"] and set(report["unknown_skus"]) <= set(SHOPPERS.skus[1::2])
    assert "tryon lowered the return rate by" in summary(report)
    assert "matches the arms' weights" in srm_verdict(report)


def test_cumulative_statistics_count_returns_as_they_arrive(experiment) -> None:  # noqa: ANN001
    sessions, traffic = experiment
    with sessions() as session:
        timeline = arm_stats_over_time(session, get_experiment(session, KEY), points=10)
    returned = [sum(a.items_returned for a in arms) for _, arms in timeline]
    assert returned == sorted(returned)
    last_time, last = timeline[-1]
    assert last_time == max(e.time for e in traffic.events)
    assert sum(a.items_returned for a in last) == sum(
        e.quantity for e in traffic.events if isinstance(e, Return) and _arm_of(e.unit_id)
    )


def test_an_experiment_without_data_reports_nulls_not_errors(experiment) -> None:  # noqa: ANN001
    sessions, _ = experiment
    with sessions() as session:  # rolled back at the end: the shared data stays as it was
        create_experiment(session, "empty", [("control", 1), ("tryon", 1)])
        report = build_report(session, "empty")
        assert report["srm_p_value"] == 1.0
        assert all(c["absolute"] is None for c in report["comparisons"])
        assert "Not enough purchases" in summary(report)
        assert "nothing to plot" in render_html(session, "empty")


def test_srm_verdict_warns_in_words() -> None:
    report = {"srm_p_value": 1e-6, "arms": [{"name": "control", "units": 5_000},
                                             {"name": "tryon", "units": 4_500}]}  # fmt: skip
    assert "Sample ratio mismatch" in srm_verdict(report)
    assert "control 5,000, tryon 4,500" in srm_verdict(report)


def test_html_report_is_one_self_contained_file(experiment) -> None:  # noqa: ANN001
    sessions, _ = experiment
    with sessions() as session:
        page = render_html(session, KEY)
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") == 2
    assert "Cumulative return rate per arm" in page and "Relative change" in page
    assert "tryon lowered the return rate by" in page
    assert "matches the arms" in page
    assert "not in the catalog" in page
    # Nothing is fetched from elsewhere: every link points inside the page.
    assert re.findall(r'(?:src|href)="(?!#)', page) == []
    assert "<link" not in page and "<script" not in page


def _report_with(effect: float, ci_low: float, ci_high: float, p_value: float) -> dict:
    arm = {"return_rate": 0.25}
    return {
        "arms": [{**arm, "name": "control"}, {"name": "tryon", "return_rate": 0.25 + effect}],
        "comparisons": [
            {
                "arm": "tryon",
                "metric": "return_rate",
                "absolute": {
                    "effect": effect,
                    "ci_low": ci_low,
                    "ci_high": ci_high,
                    "p_value": p_value,
                },
                "relative": None,
            }
        ],
    }


def test_the_summary_says_lowered_and_gives_the_interval_of_the_difference():
    text = summary(_report_with(-0.021, -0.035, -0.007, 0.004))
    assert text.startswith("tryon lowered the return rate by 2.1 points")
    assert "difference -2.1 points, 95% CI -3.5 to -0.7" in text


def test_the_summary_calls_an_interval_across_zero_no_clear_difference():
    text = summary(_report_with(-0.022, -0.062, 0.018, 0.28))
    assert text.startswith("No clear difference in return rate between tryon and control")
    assert "95% CI -6.2 to +1.8" in text
