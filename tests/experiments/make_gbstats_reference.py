"""Writes gbstats_reference.json: GrowthBook's own results for the inputs our tests use.

Run it in a separate environment that has GrowthBook's statistics package (``pip install
gbstats==0.8.0``, which pins older numpy and pandas than this project, hence not a test
dependency): ``python tests/experiments/make_gbstats_reference.py``. The JSON it writes
is the oracle ``test_stats.py`` checks :mod:`tryon.experiments.stats` against.
"""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

from gbstats.frequentist.tests import (
    FrequentistConfig,
    SequentialConfig,
    SequentialTwoSidedTTest,
    TwoSidedTTest,
)
from gbstats.models.statistics import ProportionStatistic, RatioStatistic, SampleMeanStatistic
from gbstats.utils import check_srm

CASES = {
    "proportion": [
        ({"n": 4000, "successes": 200}, {"n": 4100, "successes": 241}),
        ({"n": 120, "successes": 30}, {"n": 95, "successes": 19}),
    ],
    "mean": [
        (
            {"n": 5000, "sum": 152000.0, "sum_squares": 31_500_000.0},
            {"n": 5050, "sum": 161000.0, "sum_squares": 33_900_000.0},
        ),
        (
            {"n": 40, "sum": 310.5, "sum_squares": 4100.25},
            {"n": 55, "sum": 350.0, "sum_squares": 3300.0},
        ),
    ],
    "ratio": [
        (
            {
                "n": 20000,
                "m_sum": 1180,
                "m_sum_squares": 2650,
                "d_sum": 4700,
                "d_sum_squares": 13100,
                "md_sum": 4300,
            },
            {
                "n": 20100,
                "m_sum": 1050,
                "m_sum_squares": 2300,
                "d_sum": 4750,
                "d_sum_squares": 13400,
                "md_sum": 3900,
            },
        ),
        (
            {
                "n": 300,
                "m_sum": 40,
                "m_sum_squares": 90,
                "d_sum": 160,
                "d_sum_squares": 420,
                "md_sum": 150,
            },
            {
                "n": 310,
                "m_sum": 31,
                "m_sum_squares": 61,
                "d_sum": 170,
                "d_sum_squares": 450,
                "md_sum": 120,
            },
        ),
    ],
}
SRM_CASES = [
    ([5000, 5000], [0.5, 0.5]),
    ([5100, 4900], [0.5, 0.5]),
    ([3050, 6950], [0.3, 0.7]),
    ([1000, 1100, 900], [1 / 3, 1 / 3, 1 / 3]),
    ([480, 520], [0.5, 0.5]),
]
SEQUENTIAL_TUNINGS = [5000.0, 500.0]


def _statistic(kind: str, arm: dict):
    if kind == "proportion":
        return ProportionStatistic(n=arm["n"], sum=arm["successes"])
    if kind == "mean":
        return SampleMeanStatistic(n=arm["n"], sum=arm["sum"], sum_squares=arm["sum_squares"])
    return RatioStatistic(
        n=arm["n"],
        m_statistic=SampleMeanStatistic(
            n=arm["n"], sum=arm["m_sum"], sum_squares=arm["m_sum_squares"]
        ),
        d_statistic=SampleMeanStatistic(
            n=arm["n"], sum=arm["d_sum"], sum_squares=arm["d_sum_squares"]
        ),
        m_d_sum_of_products=arm["md_sum"],
    )


def _result(test) -> dict:
    result = test.compute_result()
    return {
        "effect": result.expected,
        "ci_low": result.ci[0],
        "ci_high": result.ci[1],
        "se": result.uplift.stddev,
        "p_value": result.p_value,
    }


def main() -> None:
    tests = []
    for kind, pairs in CASES.items():
        for control, treatment in pairs:
            for relative in (True, False):
                difference = "relative" if relative else "absolute"
                a, b = _statistic(kind, control), _statistic(kind, treatment)
                entry = {
                    "kind": kind,
                    "control": control,
                    "treatment": treatment,
                    "relative": relative,
                    "sequential_tuning": None,
                    "result": _result(
                        TwoSidedTTest(a, b, FrequentistConfig(difference_type=difference))
                    ),
                }
                tests.append(entry)
                for tuning in SEQUENTIAL_TUNINGS:
                    config = SequentialConfig(
                        difference_type=difference, sequential_tuning_parameter=tuning
                    )
                    tests.append(
                        {
                            **entry,
                            "sequential_tuning": tuning,
                            "result": _result(SequentialTwoSidedTTest(a, b, config)),
                        }
                    )
    srm = [{"counts": c, "weights": w, "p_value": check_srm(c, w)} for c, w in SRM_CASES]
    out = {
        "source": f"gbstats {version('gbstats')}, by make_gbstats_reference.py",
        "tests": tests,
        "srm": srm,
    }
    Path(__file__).with_name("gbstats_reference.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
