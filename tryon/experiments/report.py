"""An experiment's results: per-arm figures and each arm's tests against control, in words too.

:func:`build_report` returns the dictionary ``tryon ab report --json`` prints and the gRPC
``GetResults`` carries: ``experiment``, ``srm_p_value``, ``arms`` (units = exposed
shoppers, buyers, items bought and returned, return rate, conversion, net revenue per
unit, try-ons), ``comparisons`` (every other arm against the first, the control, on
``return_rate``, ``conversion`` and ``revenue_per_unit``, absolute and relative; ``null``
where there is not enough data yet) and ``unknown_skus`` (bought SKUs the catalog lacks).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from tryon.experiments.aggregates import ArmStats, arm_stats, unknown_skus
from tryon.experiments.errors import NotEnoughDataError
from tryon.experiments.stats import (
    DEFAULT_ALPHA,
    TestResult,
    mean_test,
    proportion_test,
    ratio_test,
    srm_p_value,
)
from tryon.experiments.store import get_experiment

METRICS = ("return_rate", "conversion", "revenue_per_unit")
# GrowthBook's threshold: below it the split of units is too unlikely to be chance.
SRM_THRESHOLD = 0.001
_TESTS = {"return_rate": ratio_test, "conversion": proportion_test, "revenue_per_unit": mean_test}


def _arm_row(arm: ArmStats) -> dict[str, Any]:
    return {
        "name": arm.name,
        "units": arm.units,
        "buyers": arm.buyers,
        "items_bought": arm.items_bought,
        "items_returned": arm.items_returned,
        "return_rate": arm.return_rate.mean,
        "conversion": arm.conversion.mean,
        "revenue_per_unit": arm.revenue_per_unit.mean,
        "tryons": arm.tryons,
    }


def _result(
    metric: str,
    control: ArmStats,
    treatment: ArmStats,
    relative: bool,
    alpha: float,
    sequential_tuning: float | None,
) -> dict[str, float] | None:
    test = _TESTS[metric]
    try:
        result: TestResult = test(
            getattr(control, metric),
            getattr(treatment, metric),
            relative=relative,
            sequential_tuning=sequential_tuning,
            alpha=alpha,
        )
    except NotEnoughDataError:
        return None
    return {
        "effect": result.effect,
        "ci_low": result.ci_low,
        "ci_high": result.ci_high,
        "p_value": result.p_value,
    }


def compare_arms(
    arms: list[ArmStats], alpha: float = DEFAULT_ALPHA, sequential_tuning: float | None = None
) -> dict[str, Any]:
    """The report's ``srm_p_value``, ``arms`` and ``comparisons`` for arm statistics."""
    control = arms[0]
    comparisons = [
        {
            "arm": treatment.name,
            "metric": metric,
            "absolute": _result(metric, control, treatment, False, alpha, sequential_tuning),
            "relative": _result(metric, control, treatment, True, alpha, sequential_tuning),
        }
        for treatment in arms[1:]
        for metric in METRICS
    ]
    return {
        "srm_p_value": srm_p_value([a.units for a in arms], [a.weight for a in arms]),
        "arms": [_arm_row(a) for a in arms],
        "comparisons": comparisons,
    }


def build_report(
    session: Session,
    key: str,
    alpha: float = DEFAULT_ALPHA,
    sequential_tuning: float | None = None,
) -> dict[str, Any]:
    """The results of experiment ``key`` as a JSON-ready dictionary (see the module doc)."""
    experiment = get_experiment(session, key)
    arms = arm_stats(session, experiment)
    return {
        "experiment": experiment.key,
        **compare_arms(arms, alpha, sequential_tuning),
        "unknown_skus": unknown_skus(session, experiment),
    }


def srm_verdict(report: dict[str, Any]) -> str:
    """The sample-ratio check in words: can the split of units be trusted?"""
    p = report["srm_p_value"]
    counts = ", ".join(f"{a['name']} {a['units']:,}" for a in report["arms"])
    if p < SRM_THRESHOLD:
        return (
            f"Sample ratio mismatch (p = {p:.2g}): the arms got {counts} units, too far from "
            "their weights to be chance. Assignment or exposure recording is broken; do not "
            "trust these results until it is found."
        )
    return f"The split of units ({counts}) matches the arms' weights (SRM check p = {p:.2f})."


def summary(report: dict[str, Any], alpha: float = DEFAULT_ALPHA) -> str:
    """One plain-language sentence per treatment arm on its return rate against control."""
    level = f"{1 - alpha:.0%}"
    control = report["arms"][0]
    rates = {a["name"]: a["return_rate"] for a in report["arms"]}
    sentences = []
    for comparison in report["comparisons"]:
        if comparison["metric"] != "return_rate":
            continue
        arm, absolute = comparison["arm"], comparison["absolute"]
        if absolute is None:
            sentences.append(
                f"Not enough purchases and returns yet to compare {arm}'s return rate with "
                f"{control['name']}'s."
            )
            continue
        points = -absolute["effect"] * 100
        # The interval is of the difference as measured, arm minus control, so its sign
        # reads the same way in every sentence.
        figures = (
            f"({rates[control['name']]:.1%} in {control['name']}, {rates[arm]:.1%} in {arm}; "
            f"difference {absolute['effect'] * 100:+.1f} points, {level} CI "
            f"{absolute['ci_low'] * 100:+.1f} to {absolute['ci_high'] * 100:+.1f}, "
            f"p = {absolute['p_value']:.2g})"
        )
        if absolute["ci_low"] > 0 or absolute["ci_high"] < 0:
            verb = "lowered" if points > 0 else "raised"
            sentences.append(f"{arm} {verb} the return rate by {abs(points):.1f} points {figures}.")
        else:
            sentences.append(
                f"No clear difference in return rate between {arm} and {control['name']} yet "
                f"{figures}."
            )
    return " ".join(sentences)
