"""Deterministic assignment of units to arms, the same as GrowthBook's SDKs.

A unit's bucket is a number in [0, 1) hashed from the experiment's seed and the unit id
(GrowthBook's documented hashing: 32-bit FNV-1a over UTF-16 code units; version 2 hashes
the decimal digits of a first hash again, version 1 is the legacy one). Arms own ranges
of [0, 1): arm ``i`` starts where the weights before it end, and covers ``coverage``
times its weight of that stretch. A unit whose bucket falls in no range is not in the
experiment. Because a range only ever grows or shrinks at its top end, changing coverage
moves units in or out of the experiment but never from one arm to another; a store that
runs GrowthBook with the same key, seed and weights gets the same arms.
"""

from __future__ import annotations

import math

from tryon.experiments.errors import ExperimentDefinitionError

HASH_VERSIONS = (1, 2)
_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193
# GrowthBook accepts weights that sum to 1 within this tolerance.
WEIGHT_SUM_TOLERANCE = 0.01


def fnv1a32(text: str) -> int:
    """The 32-bit FNV-1a hash of ``text``'s UTF-16 code units (JavaScript's ``charCodeAt``)."""
    data = text.encode("utf-16-le", "surrogatepass")
    value = _FNV_OFFSET
    for index in range(0, len(data), 2):
        value ^= data[index] | (data[index + 1] << 8)
        value = (value * _FNV_PRIME) & 0xFFFFFFFF
    return value


def bucket(seed: str, unit_id: str, version: int = 2) -> float:
    """The unit's bucket in [0, 1) for an experiment hashed with ``seed``.

    Version 2 has 10,000 buckets and mixes seed and id well; version 1 (1,000 buckets,
    id before seed) is kept for experiments that started with it.
    """
    if version == 2:
        return fnv1a32(str(fnv1a32(seed + unit_id))) % 10000 / 10000
    if version == 1:
        return fnv1a32(unit_id + seed) % 1000 / 1000
    raise ExperimentDefinitionError(
        f"unknown hash version {version}, supported: {list(HASH_VERSIONS)}"
    )


def check_weights(n_arms: int, weights: list[float]) -> None:
    """Raise :class:`ExperimentDefinitionError` unless ``weights`` fit ``n_arms`` and sum to 1."""
    if len(weights) != n_arms:
        raise ExperimentDefinitionError(
            f"{len(weights)} weights for {n_arms} arms; give one weight per arm"
        )
    if any(not math.isfinite(w) or w < 0 for w in weights):
        raise ExperimentDefinitionError(f"weights must be finite and not negative, got {weights}")
    if abs(sum(weights) - 1) > WEIGHT_SUM_TOLERANCE:
        raise ExperimentDefinitionError(
            f"weights must sum to 1, got {weights} (sum {sum(weights):g}); divide each by the sum"
        )


def bucket_ranges(n_arms: int, coverage: float, weights: list[float]) -> list[tuple[float, float]]:
    """Each arm's half-open range ``[start, end)`` of buckets, in arm order.

    ``weights`` are the arms' shares of the traffic and sum to 1; ``coverage`` in [0, 1] is
    the share of units that enter the experiment at all (clamped to [0, 1] as GrowthBook
    does). Unlike GrowthBook, which silently falls back to equal weights, unusable
    weights raise :class:`ExperimentDefinitionError`.
    """
    check_weights(n_arms, weights)
    coverage = min(max(coverage, 0.0), 1.0)
    ranges = []
    start = 0.0
    for weight in weights:
        ranges.append((start, start + coverage * weight))
        start += weight
    return ranges


def choose_arm(bucket_value: float, ranges: list[tuple[float, float]]) -> int | None:
    """The index of the arm whose range holds ``bucket_value``, or ``None`` (not in the test)."""
    for index, (start, end) in enumerate(ranges):
        if start <= bucket_value < end:
            return index
    return None
