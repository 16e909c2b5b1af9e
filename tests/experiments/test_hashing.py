"""Assignment agrees with the GrowthBook SDK, and coverage changes never switch arms."""

from __future__ import annotations

import random

import pytest
from growthbook import Experiment as GrowthBookExperiment
from growthbook import GrowthBook
from growthbook.core import chooseVariation, gbhash, getBucketRanges
from scipy.stats import chisquare

from tryon.experiments.errors import ExperimentDefinitionError
from tryon.experiments.hashing import bucket, bucket_ranges, choose_arm


def _unit_ids(count: int) -> list[str]:
    rng = random.Random(7)
    ids = [f"shopper-{i}" for i in range(count // 2)]
    ids += [f"{rng.getrandbits(64):x}" for _ in range(count // 4)]
    # Non-ASCII ids: GrowthBook hashes UTF-16 code units, astral characters as two.
    alphabet = "aéßø中文😀Ω-_0123456789"
    for _ in range(count // 4):
        ids.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))))
    return ids


@pytest.mark.parametrize("version", [1, 2])
def test_buckets_equal_growthbooks_on_many_ids(version: int) -> None:
    ids = _unit_ids(20_000)
    for seed in ("tryon-returns", "", "ünïcode-seed"):
        assert [bucket(seed, uid, version) for uid in ids] == [
            gbhash(seed, uid, version) for uid in ids
        ]


def test_buckets_spread_evenly() -> None:
    values = [bucket("spread", f"u{i}") for i in range(50_000)]
    assert all(0 <= v < 1 for v in values)
    deciles = [sum(int(v * 10) == d for v in values) for d in range(10)]
    assert chisquare(deciles).pvalue > 0.001


@pytest.mark.parametrize(
    ("weights", "coverage"),
    [
        ([0.5, 0.5], 1.0),
        ([0.2, 0.8], 0.5),
        ([0.1, 0.3, 0.6], 0.33),
        ([0.25] * 4, 0.0),
        ([1.0, 0.0], 1.0),
    ],
)
def test_ranges_equal_growthbooks(weights: list[float], coverage: float) -> None:
    ours = bucket_ranges(len(weights), coverage, weights)
    assert ours == getBucketRanges(len(weights), coverage, weights)
    for n in [i / 1000 for i in range(1000)]:
        expected = chooseVariation(n, getBucketRanges(len(weights), coverage, weights))
        assert choose_arm(n, ours) == (None if expected == -1 else expected)


def test_whole_assignment_matches_growthbooks_experiment_run() -> None:
    weights, coverage, seed = [0.3, 0.7], 0.8, "returns-2026"
    ranges = bucket_ranges(2, coverage, weights)
    for uid in _unit_ids(4_000):
        result = GrowthBook(attributes={"id": uid}).run(
            GrowthBookExperiment(
                key="tryon-returns",
                variations=["control", "tryon"],
                weights=weights,
                coverage=coverage,
                seed=seed,
                hashVersion=2,
            )
        )
        ours = choose_arm(bucket(seed, uid), ranges)
        assert (ours is not None) == result.inExperiment, uid
        if ours is not None:
            assert ours == result.variationId, uid


def test_changing_coverage_never_moves_a_unit_between_arms() -> None:
    weights = [0.2, 0.3, 0.5]
    ids = _unit_ids(10_000)
    buckets = [bucket("coverage", uid) for uid in ids]
    coverages = [0.05, 0.1, 0.37, 0.5, 0.9, 1.0]
    arms = {c: [choose_arm(b, bucket_ranges(3, c, weights)) for b in buckets] for c in coverages}
    for smaller, larger in zip(coverages[:-1], coverages[1:], strict=True):
        for before, after in zip(arms[smaller], arms[larger], strict=True):
            # Growing coverage only lets units in; whoever was in keeps their arm.
            assert before is None or before == after
    assert sum(a is not None for a in arms[0.5]) == pytest.approx(5_000, rel=0.05)


@pytest.mark.parametrize(
    ("weights", "message"),
    [([0.5], "1 weights for 2 arms"), ([0.7, 0.7], "sum to 1"), ([1.5, -0.5], "not negative")],
)
def test_unusable_weights_are_refused(weights: list[float], message: str) -> None:
    with pytest.raises(ExperimentDefinitionError, match=message):
        bucket_ranges(2, 1.0, weights)


def test_unknown_hash_version_names_the_supported_ones() -> None:
    with pytest.raises(ExperimentDefinitionError, match=r"supported: \[1, 2\]"):
        bucket("s", "u", version=3)
