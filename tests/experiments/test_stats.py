"""Statistics agree with GrowthBook's engine, SciPy and statsmodels, and plan as documented."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as scipy_stats
from statsmodels.stats import proportion as sm_proportion
from statsmodels.stats.power import NormalIndPower

from tryon.experiments.errors import NotEnoughDataError
from tryon.experiments.stats import (
    Proportion,
    RatioStats,
    SampleStats,
    interval,
    mean_test,
    plan,
    proportion_test,
    ratio_test,
    srm_p_value,
)

REFERENCE = json.loads(Path(__file__).with_name("gbstats_reference.json").read_text())
KINDS = {
    "proportion": (Proportion, proportion_test),
    "mean": (SampleStats, mean_test),
    "ratio": (RatioStats, ratio_test),
}


def _case_id(case: dict) -> str:
    scale = "relative" if case["relative"] else "absolute"
    return f"{case['kind']}-n{case['control']['n']}-{scale}-seq{case['sequential_tuning']}"


@pytest.mark.parametrize("case", REFERENCE["tests"], ids=_case_id)
def test_agrees_with_growthbook_to_four_decimals(case: dict) -> None:
    make, test = KINDS[case["kind"]]
    result = test(
        make(**case["control"]),
        make(**case["treatment"]),
        relative=case["relative"],
        sequential_tuning=case["sequential_tuning"],
    )
    for field, expected in case["result"].items():
        assert getattr(result, field) == pytest.approx(expected, abs=1e-9), field


@pytest.mark.parametrize("case", REFERENCE["srm"], ids=lambda c: str(c["counts"]))
def test_srm_agrees_with_growthbook(case: dict) -> None:
    assert srm_p_value(case["counts"], case["weights"]) == pytest.approx(case["p_value"], abs=5e-5)


def test_srm_flags_a_broken_split_and_passes_a_fair_one() -> None:
    assert srm_p_value([10_000, 10_150], [0.5, 0.5]) > 0.2
    assert srm_p_value([10_000, 10_600], [0.5, 0.5]) < 0.001
    assert srm_p_value([0, 5], [1.0, 0.0]) == 0.0  # units where none may go
    assert srm_p_value([0, 0], [0.5, 0.5]) == 1.0


def _sample(rng: np.random.Generator, values: np.ndarray) -> SampleStats:
    return SampleStats(len(values), float(values.sum()), float((values**2).sum()))


def test_absolute_mean_test_is_welchs_t_test() -> None:
    rng = np.random.default_rng(3)
    control = rng.gamma(2.0, 30.0, size=800)
    treatment = rng.gamma(2.2, 30.0, size=650)
    ours = mean_test(_sample(rng, control), _sample(rng, treatment), relative=False)
    welch = scipy_stats.ttest_ind(treatment, control, equal_var=False)
    ci = welch.confidence_interval(0.95)
    assert ours.p_value == pytest.approx(welch.pvalue, rel=1e-9)
    assert (ours.ci_low, ours.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-9)
    assert ours.effect == pytest.approx(treatment.mean() - control.mean())


def test_absolute_proportion_test_matches_statsmodels_wald() -> None:
    control, treatment = Proportion(20_000, 1_000), Proportion(20_000, 1_120)
    ours = proportion_test(control, treatment, relative=False)
    _, p_value = sm_proportion.test_proportions_2indep(
        1_120, 20_000, 1_000, 20_000, method="wald", compare="diff", correction=False
    )
    low, high = sm_proportion.confint_proportions_2indep(
        1_120, 20_000, 1_000, 20_000, method="wald"
    )
    # A z-test against our t-test with ~40,000 degrees of freedom: equal to 4 decimals.
    assert ours.p_value == pytest.approx(p_value, abs=1e-4)
    assert (ours.ci_low, ours.ci_high) == pytest.approx((low, high), abs=1e-4)


def test_ratio_variance_is_the_linearised_per_unit_variance() -> None:
    # Delta method: the ratio's variance is that of (m - R d) / mean(d) per unit.
    rng = np.random.default_rng(5)
    bought = rng.poisson(1.0, size=3_000)
    returned = rng.binomial(bought, rng.beta(2, 6, size=3_000))
    stats = RatioStats(
        n=3_000,
        m_sum=float(returned.sum()),
        m_sum_squares=float((returned**2).sum()),
        d_sum=float(bought.sum()),
        d_sum_squares=float((bought**2).sum()),
        md_sum=float((returned * bought).sum()),
    )
    rate = returned.sum() / bought.sum()
    linearised = (returned - rate * bought) / bought.mean()
    assert stats.mean == pytest.approx(rate)
    assert stats.variance == pytest.approx(linearised.var(ddof=1), rel=1e-9)


def test_ratio_with_one_item_per_unit_is_a_mean_test() -> None:
    control = RatioStats(500, 120, 120, 500, 500, 120)
    treatment = RatioStats(480, 90, 90, 480, 480, 90)
    as_ratio = ratio_test(control, treatment, relative=False)
    as_mean = mean_test(SampleStats(500, 120, 120), SampleStats(480, 90, 90), relative=False)
    assert as_ratio.effect == pytest.approx(as_mean.effect)
    assert as_ratio.se == pytest.approx(as_mean.se)
    assert as_ratio.p_value == pytest.approx(as_mean.p_value)


def test_sequential_intervals_survive_daily_peeking() -> None:
    # 400 A/A experiments looked at on 20 days: a fixed-horizon interval excludes zero on
    # some day far more often than 5%; the always-valid one does not.
    rng = np.random.default_rng(11)
    days, experiments, per_day = 20, 400, 50
    a = rng.binomial(per_day, 0.3, size=(experiments, days)).cumsum(axis=1)
    b = rng.binomial(per_day, 0.3, size=(experiments, days)).cumsum(axis=1)
    fixed_false = sequential_false = 0
    for row_a, row_b in zip(a, b, strict=True):
        fixed_hit = sequential_hit = False
        for day in range(days):
            n = per_day * (day + 1)
            control, treatment = Proportion(n, row_a[day]), Proportion(n, row_b[day])
            fixed = proportion_test(control, treatment, relative=False)
            always = proportion_test(control, treatment, relative=False, sequential_tuning=2_000)
            assert always.ci_high - always.ci_low > fixed.ci_high - fixed.ci_low
            fixed_hit |= fixed.p_value < 0.05
            sequential_hit |= always.ci_low > 0 or always.ci_high < 0
        fixed_false += fixed_hit
        sequential_false += sequential_hit
    assert fixed_false / experiments > 0.15
    assert sequential_false / experiments <= 0.05


def test_interval_of_one_arm_covers_its_mean() -> None:
    low, high = interval(Proportion(1_000, 250))
    assert low < 0.25 < high
    assert high - low == pytest.approx(2 * 1.962 * (0.25 * 0.75 / 1_000) ** 0.5, rel=1e-3)


@pytest.mark.parametrize(
    ("control", "treatment", "message"),
    [
        (Proportion(1, 1), Proportion(10, 5), "control arm has 1 units"),
        (Proportion(10, 0), Proportion(10, 5), "does not vary"),
        (SampleStats(10, 0.0, 1.0), SampleStats(10, 3.0, 4.0), "mean is 0"),
    ],
)
def test_untestable_inputs_say_why(control, treatment, message: str) -> None:  # noqa: ANN001
    test = proportion_test if isinstance(control, Proportion) else mean_test
    with pytest.raises(NotEnoughDataError, match=message):
        test(control, treatment)


def test_plan_for_a_tenth_fewer_returns_at_a_quarter_is_about_4500_items() -> None:
    result = plan(0.25, 0.10)
    assert 4_400 <= result.items_per_arm <= 4_600
    effect = sm_proportion.proportion_effectsize(0.25, 0.225)
    statsmodels_n = NormalIndPower().solve_power(effect, alpha=0.05, power=0.8)
    assert result.items_per_arm == pytest.approx(statsmodels_n, rel=0.02)
    # 2 items per buyer, 5% of exposed shoppers buy: 10 shoppers per item.
    assert result.shoppers_per_arm == result.items_per_arm * 10


def test_plan_grows_with_more_arms_power_and_correlated_returns() -> None:
    base = plan(0.25, 0.10).items_per_arm
    assert plan(0.25, 0.10, arms=3).items_per_arm > base
    assert plan(0.25, 0.10, power=0.9).items_per_arm > base
    assert plan(0.25, 0.10, return_correlation=0.2).items_per_arm > base
    assert plan(0.25, 0.20).items_per_arm < base / 3


def test_plan_refuses_impossible_inputs() -> None:
    with pytest.raises(ValueError, match="baseline_return_rate"):
        plan(1.2, 0.1)
    with pytest.raises(ValueError, match="relative_mde"):
        plan(0.25, 0.0)
