"""BoundedCache: recency, expiry, weight bound and hit counting."""

from __future__ import annotations

from tryon.server.caches import BoundedCache


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_least_recently_used_entry_goes_first():
    cache: BoundedCache[str] = BoundedCache(2)
    cache.put("a", "A")
    cache.put("b", "B")
    assert cache.get("a") == "A"  # now "b" is the least recently used
    cache.put("c", "C")
    assert cache.get("b") is None
    assert cache.get("a") == "A" and cache.get("c") == "C"


def test_entries_expire_after_the_ttl():
    clock = FakeClock()
    cache: BoundedCache[str] = BoundedCache(10, ttl_s=60, clock=clock)
    cache.put("photo", "analysis")
    clock.now = 59
    assert cache.get("photo") == "analysis"
    clock.now = 61
    assert cache.get("photo") is None
    assert len(cache) == 0


def test_total_weight_stays_within_the_bound():
    cache: BoundedCache[bytes] = BoundedCache(100, weigh=len, max_weight=10)
    cache.put("a", b"x" * 6)
    cache.put("b", b"x" * 6)  # 12 > 10: "a" goes
    assert cache.get("a") is None and cache.get("b") is not None
    cache.put("huge", b"x" * 11)  # heavier than the bound: not kept, evicts nothing
    assert cache.get("huge") is None and cache.get("b") is not None
    assert cache.weight == 6


def test_lookups_are_reported_as_hits_and_misses():
    seen: list[bool] = []
    cache: BoundedCache[int] = BoundedCache(4, on_lookup=seen.append)
    cache.get("k")
    cache.put("k", 1)
    cache.get("k")
    assert seen == [False, True]
