"""A bounded in-memory cache with expiry: analysed persons and prepared garments live in it."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class BoundedCache(Generic[V]):
    """Least-recently-used cache bounded by entries and by total weight, entries expire.

    Args:
        max_entries: most entries kept.
        ttl_s: an entry older than this is a miss (None: never expires).
        weigh: the weight of a value (e.g. its bytes); with `max_weight`, the oldest
            entries go until the total fits. A value heavier than `max_weight` is not kept.
        on_lookup: called with True for a hit and False for a miss (metrics).
        on_change: called with the entries and total weight held after each change (metrics).
        clock: seconds, monotonic (tests pass a fake one).

    Thread-safe: the event loop and the model thread both use it.
    """

    def __init__(
        self,
        max_entries: int,
        ttl_s: float | None = None,
        *,
        weigh: Callable[[V], int] | None = None,
        max_weight: int | None = None,
        on_lookup: Callable[[bool], None] | None = None,
        on_change: Callable[[int, int], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self.weigh = weigh or (lambda _: 0)
        self.max_weight = max_weight
        self.on_lookup = on_lookup
        self.on_change = on_change
        self.clock = clock
        self.weight = 0
        self._entries: OrderedDict[Hashable, tuple[float, int, V]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> V | None:
        """The live value under `key`, or None (expired entries are dropped)."""
        with self._lock:
            entry = self._entries.get(key)
            if (
                entry is not None
                and self.ttl_s is not None
                and self.clock() - entry[0] > self.ttl_s
            ):
                self._drop(key)
                self._report()
                entry = None
            if entry is not None:
                self._entries.move_to_end(key)
        if self.on_lookup is not None:
            self.on_lookup(entry is not None)
        return None if entry is None else entry[2]

    def put(self, key: Hashable, value: V) -> None:
        """Store `value`, evicting expired entries and the least recently used ones beyond
        the bounds."""
        weight = self.weigh(value)
        with self._lock:
            if key in self._entries:
                self._drop(key)
            self._drop_expired()
            if self.max_weight is None or weight <= self.max_weight:
                self._entries[key] = (self.clock(), weight, value)
                self.weight += weight
                while len(self._entries) > self.max_entries or (
                    self.max_weight is not None and self.weight > self.max_weight
                ):
                    self._drop(next(iter(self._entries)))
            self._report()

    def purge_expired(self) -> int:
        """Drop every entry older than the TTL; return how many went. Expired entries are
        misses anyway: this makes sure they also leave memory when nobody asks for them."""
        with self._lock:
            dropped = self._drop_expired()
            if dropped:
                self._report()
        return dropped

    def _drop_expired(self) -> int:
        if self.ttl_s is None:
            return 0
        oldest = self.clock() - self.ttl_s
        expired = [key for key, (stored, _, _) in self._entries.items() if stored < oldest]
        for key in expired:
            self._drop(key)
        return len(expired)

    def _drop(self, key: Hashable) -> None:
        _, weight, _ = self._entries.pop(key)
        self.weight -= weight

    def _report(self) -> None:
        if self.on_change is not None:
            self.on_change(len(self._entries), self.weight)
