"""Tests of an experiment's arms from sufficient statistics, as GrowthBook's frequentist engine.

Every test takes per-arm sums (which SQL computes, see :mod:`tryon.experiments.aggregates`)
and compares a treatment arm with the control arm:

- the difference of means is tested with Welch's t-test (unequal variances), its degrees
  of freedom from the Welch-Satterthwaite equation;
- a relative lift ``(treatment - control) / control`` gets its variance from the delta
  method, ``var_t / (mu_c^2 n_t) + var_c mu_t^2 / (mu_c^4 n_c)``;
- a ratio metric (items returned over items bought, clustered by shopper) gets its
  per-unit variance from the delta method too, so shoppers who return everything they buy
  count as the correlated units they are;
- proportions use the variance ``p (1 - p)``.

``sequential_tuning`` switches to always-valid intervals (the asymptotic confidence
sequences of Waudby-Smith et al., 2023, "Time-uniform central limit theory"), safe to
look at every day; it is the sample size (both arms together) the intervals are tightest
at, GrowthBook's "tuning parameter" (its default is 5,000).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats as scipy_stats

from tryon.experiments.errors import NotEnoughDataError

DEFAULT_ALPHA = 0.05


@dataclass(frozen=True)
class Proportion:
    """How many of ``n`` units did something (bought at all, say)."""

    n: int
    successes: float

    @property
    def mean(self) -> float:
        """The share of units that did it."""
        return self.successes / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        """The per-unit variance ``p (1 - p)``."""
        return self.mean * (1 - self.mean)


@dataclass(frozen=True)
class SampleStats:
    """Sum and sum of squares of a per-unit value (revenue per shopper, say) over ``n`` units."""

    n: int
    sum: float
    sum_squares: float

    @property
    def mean(self) -> float:
        """The mean per unit."""
        return self.sum / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        """The sample variance per unit (``n - 1`` in the denominator)."""
        if self.n <= 1:
            return 0.0
        return (self.sum_squares - self.sum**2 / self.n) / (self.n - 1)


@dataclass(frozen=True)
class RatioStats:
    """Sums for a ratio metric ``sum(m) / sum(d)`` over ``n`` units.

    For the return rate ``m`` is a shopper's items returned and ``d`` their items bought;
    ``n`` counts every exposed shopper, those who bought nothing with ``m = d = 0``.
    """

    n: int
    m_sum: float
    m_sum_squares: float
    d_sum: float
    d_sum_squares: float
    md_sum: float

    @property
    def numerator(self) -> SampleStats:
        """The per-unit statistics of ``m``."""
        return SampleStats(self.n, self.m_sum, self.m_sum_squares)

    @property
    def denominator(self) -> SampleStats:
        """The per-unit statistics of ``d``."""
        return SampleStats(self.n, self.d_sum, self.d_sum_squares)

    @property
    def mean(self) -> float:
        """The ratio ``sum(m) / sum(d)`` (0 while nothing is in the denominator)."""
        return self.m_sum / self.d_sum if self.d_sum else 0.0

    @property
    def covariance(self) -> float:
        """The sample covariance of ``m`` and ``d`` per unit."""
        if self.n <= 1:
            return 0.0
        return (self.md_sum - self.m_sum * self.d_sum / self.n) / (self.n - 1)

    @property
    def variance(self) -> float:
        """The delta method's variance of the ratio, per unit (divide by ``n`` for the mean's)."""
        m, d = self.numerator, self.denominator
        if self.n <= 1 or d.mean == 0:
            return 0.0
        return (
            m.variance / d.mean**2
            - 2 * self.covariance * m.mean / d.mean**3
            + m.mean**2 * d.variance / d.mean**4
        )


Statistic = Proportion | SampleStats | RatioStats


@dataclass(frozen=True)
class TestResult:
    """A comparison's estimate, its interval, standard error and two-sided p-value.

    ``effect`` is ``treatment - control``, or that over ``control`` when relative.
    """

    __test__ = False  # not a pytest test class, despite the name

    effect: float
    ci_low: float
    ci_high: float
    se: float
    p_value: float


def _check(control: Statistic, treatment: Statistic, relative: bool) -> None:
    for arm, stat in (("control", control), ("treatment", treatment)):
        if stat.n < 2:
            raise NotEnoughDataError(f"the {arm} arm has {stat.n} units; a test needs 2 or more")
        if stat.variance <= 0:
            raise NotEnoughDataError(
                f"the {arm} arm's metric does not vary yet (every unit has the same value); "
                "wait for more data"
            )
    if relative and control.mean == 0:
        raise NotEnoughDataError(
            "the control arm's mean is 0, so a relative change is undefined; "
            "use the absolute difference"
        )


def _welch_dof(control: Statistic, treatment: Statistic) -> float:
    a = control.variance / control.n
    b = treatment.variance / treatment.n
    return (a + b) ** 2 / (a**2 / (control.n - 1) + b**2 / (treatment.n - 1))


def _compare(
    control: Statistic,
    treatment: Statistic,
    relative: bool,
    alpha: float,
    sequential_tuning: float | None,
) -> TestResult:
    _check(control, treatment, relative)
    mu_c, mu_t = control.mean, treatment.mean
    if relative:
        effect = (mu_t - mu_c) / mu_c
        variance = treatment.variance / (mu_c**2 * treatment.n) + control.variance * mu_t**2 / (
            mu_c**4 * control.n
        )
    else:
        effect = mu_t - mu_c
        variance = treatment.variance / treatment.n + control.variance / control.n
    se = math.sqrt(variance)
    if sequential_tuning is not None:
        half_width, p_value = _sequential(
            effect, variance, control.n + treatment.n, alpha, sequential_tuning
        )
    else:
        dof = _welch_dof(control, treatment)
        half_width = float(scipy_stats.t.ppf(1 - alpha / 2, dof)) * se
        p_value = float(2 * scipy_stats.t.sf(abs(effect) / se, dof))
    return TestResult(effect, effect - half_width, effect + half_width, se, p_value)


def _sequential(
    effect: float, variance: float, n: int, alpha: float, tuning: float
) -> tuple[float, float]:
    """Half-width and p-value of the always-valid (normal-mixture) confidence sequence."""
    if tuning <= 0:
        raise ValueError(f"sequential_tuning must be positive, got {tuning}")
    # The mixture's spread is chosen so the sequence is narrowest at `tuning` units.
    rho2 = (-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning
    spread = n * rho2 + 1
    unit_variance = variance * n  # variance of one unit's contribution
    half_width = math.sqrt(unit_variance) * math.sqrt(
        2 * spread / (n**2 * rho2) * math.log(math.sqrt(spread) / alpha)
    )
    # p-value: one over the mixture martingale's e-value, capped at 1.
    z2 = effect**2 / variance
    log_evalue = rho2 * n * z2 / (2 * spread) - 0.5 * math.log(spread)
    return half_width, min(1.0, math.exp(-log_evalue))


def proportion_test(
    control: Proportion,
    treatment: Proportion,
    relative: bool = True,
    sequential_tuning: float | None = None,
    *,
    alpha: float = DEFAULT_ALPHA,
) -> TestResult:
    """Compare the share of units that did something (conversion) between two arms."""
    return _compare(control, treatment, relative, alpha, sequential_tuning)


def mean_test(
    control: SampleStats,
    treatment: SampleStats,
    relative: bool = True,
    sequential_tuning: float | None = None,
    *,
    alpha: float = DEFAULT_ALPHA,
) -> TestResult:
    """Compare a per-unit mean (revenue per shopper) between two arms."""
    return _compare(control, treatment, relative, alpha, sequential_tuning)


def ratio_test(
    control: RatioStats,
    treatment: RatioStats,
    relative: bool = True,
    sequential_tuning: float | None = None,
    *,
    alpha: float = DEFAULT_ALPHA,
) -> TestResult:
    """Compare a ratio metric (the return rate, clustered by shopper) between two arms."""
    return _compare(control, treatment, relative, alpha, sequential_tuning)


def interval(stat: Statistic, alpha: float = DEFAULT_ALPHA) -> tuple[float, float]:
    """A ``1 - alpha`` confidence interval of one arm's own mean (or ratio)."""
    if stat.n < 2:
        return (stat.mean, stat.mean)
    half_width = float(scipy_stats.t.ppf(1 - alpha / 2, stat.n - 1)) * math.sqrt(
        max(stat.variance, 0.0) / stat.n
    )
    return (stat.mean - half_width, stat.mean + half_width)


def srm_p_value(counts: list[int], weights: list[float]) -> float:
    """The chi-square test's p-value that units split across arms as ``weights`` say.

    A tiny value (GrowthBook warns below 0.001) means a sample ratio mismatch: assignment
    or exposure recording is broken, and the experiment's results cannot be trusted.
    """
    if len(counts) != len(weights):
        raise ValueError(f"{len(counts)} counts for {len(weights)} weights")
    total = sum(counts)
    if total == 0:
        return 1.0
    if any(c > 0 and w <= 0 for c, w in zip(counts, weights, strict=True)):
        return 0.0  # units in an arm that should get none
    observed = [c for c, w in zip(counts, weights, strict=True) if w > 0]
    positive = [w for w in weights if w > 0]
    expected = [total * w / sum(positive) for w in positive]
    if len(observed) < 2:
        return 1.0
    return float(scipy_stats.chisquare(observed, expected).pvalue)


@dataclass(frozen=True)
class Plan:
    """How much traffic an experiment needs: per arm, in items bought and in shoppers."""

    items_per_arm: int
    shoppers_per_arm: int
    arms: int

    @property
    def total_shoppers(self) -> int:
        """Shoppers to expose across all arms."""
        return self.shoppers_per_arm * self.arms


def plan(
    baseline_return_rate: float,
    relative_mde: float,
    power: float = 0.8,
    alpha: float = DEFAULT_ALPHA,
    arms: int = 2,
    *,
    items_per_buyer: float = 2.0,
    conversion: float = 0.05,
    return_correlation: float = 0.0,
) -> Plan:
    """The sample size to detect a relative drop ``relative_mde`` of the return rate.

    ``relative_mde=0.10`` plans for 25% -> 22.5% at a 25% baseline (about 4,550 items
    per arm); the test stays two-sided, and only the size of ``relative_mde`` counts,
    because try-on is expected to lower returns.
    Items per arm come from the two-sided test of two proportions (pooled variance under
    the null, unpooled under the alternative); with more than two arms each treatment is
    compared with control at ``alpha / (arms - 1)`` (Bonferroni). Shoppers per arm divide
    that by the items a buyer buys and the share of exposed shoppers who buy.

    ``return_correlation`` is the correlation between two items of the same shopper
    being returned (some shoppers return much more than others); it inflates the items
    needed by the design effect ``1 + rho (k - 1)``, with ``k = E[d^2] / E[d]`` for
    baskets of ``1 + Poisson(items_per_buyer - 1)`` items.
    """
    _check_plan(baseline_return_rate, relative_mde, power, alpha, arms)
    if items_per_buyer < 1 or not 0 < conversion <= 1 or not 0 <= return_correlation < 1:
        raise ValueError(
            "items_per_buyer must be at least 1, conversion in (0, 1] and "
            f"return_correlation in [0, 1); got {items_per_buyer}, {conversion}, "
            f"{return_correlation}"
        )
    p1 = baseline_return_rate
    p2 = baseline_return_rate * (1 - abs(relative_mde))
    pooled = (p1 + p2) / 2
    z_alpha = scipy_stats.norm.ppf(1 - alpha / (arms - 1) / 2)
    z_power = scipy_stats.norm.ppf(power)
    spread = z_alpha * math.sqrt(2 * pooled * (1 - pooled)) + z_power * math.sqrt(
        p1 * (1 - p1) + p2 * (1 - p2)
    )
    basket_factor = items_per_buyer + (items_per_buyer - 1) / items_per_buyer
    design_effect = 1 + return_correlation * (basket_factor - 1)
    items = math.ceil(spread**2 / (p1 - p2) ** 2 * design_effect)
    shoppers = math.ceil(items / (items_per_buyer * conversion))
    return Plan(items_per_arm=items, shoppers_per_arm=shoppers, arms=arms)


def _check_plan(
    baseline_return_rate: float, relative_mde: float, power: float, alpha: float, arms: int
) -> None:
    if not 0 < baseline_return_rate < 1:
        raise ValueError(f"baseline_return_rate must be in (0, 1), got {baseline_return_rate}")
    if not 0 < abs(relative_mde) < 1:
        raise ValueError(f"relative_mde must be a drop in (0, 1), got {relative_mde}")
    if not 0 < power < 1 or not 0 < alpha < 1:
        raise ValueError(f"power and alpha must be in (0, 1), got {power} and {alpha}")
    if arms < 2:
        raise ValueError(f"an experiment needs at least 2 arms, got {arms}")
