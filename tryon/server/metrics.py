"""Prometheus metrics of one server, in their own registry, served on an HTTP port."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    start_http_server,
)

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10, 30)
QUEUE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
REFUSAL_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25)


class ServerMetrics:
    """The server's metrics (names start with `tryon_`), plus process RSS and CPU.

    `try_ons_in_progress` is the gauge for an autoscaler: try-ons accepted and not yet
    answered (queued, in a model batch, or being encoded); a `TryOnMany` of 16 garments
    counts 16. `in_flight` counts calls, whatever their size.
    """

    def __init__(self, max_batch: int) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        r = self.registry
        self.requests = Counter(
            "tryon_requests",
            "Finished calls by method and status code.",
            ["method", "code"],
            registry=r,
        )
        self.latency = Histogram(
            "tryon_request_seconds",
            "Call duration by method.",
            ["method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.refusal_time = Histogram(
            "tryon_refusal_seconds",
            "Time from a call's start in the server to its RESOURCE_EXHAUSTED (a full queue "
            "or a key's rate limit).",
            buckets=REFUSAL_BUCKETS,
            registry=r,
        )
        self.queue_time = Histogram(
            "tryon_queue_seconds",
            "Time a try-on waited for its batch.",
            buckets=QUEUE_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "tryon_batch_size",
            "Try-ons per model batch.",
            buckets=tuple(range(1, max_batch + 1)),
            registry=r,
        )
        self.in_flight = Gauge("tryon_in_flight_requests", "Calls being served.", registry=r)
        self.queue_depth = Gauge(
            "tryon_queue_depth", "Try-ons waiting for or in a model batch.", registry=r
        )
        self.try_ons_in_progress = Gauge(
            "tryon_try_ons_in_progress",
            "Try-ons accepted and not yet answered: queued, running or being encoded "
            "(the autoscaling metric).",
            registry=r,
        )
        self.cache_bytes = Gauge(
            "tryon_cache_bytes", "Bytes held by each cache.", ["cache"], registry=r
        )
        self.cache_entries = Gauge(
            "tryon_cache_entries", "Entries held by each cache.", ["cache"], registry=r
        )
        self.loop_lag = Gauge(
            "tryon_event_loop_lag_seconds",
            "How late the event loop ran the watchdog's last heartbeat.",
            registry=r,
        )
        self.schema_ready = Gauge(
            "tryon_database_schema_ready",
            "1 once the database schema is at the revision this server needs.",
            registry=r,
        )
        self.seconds_to_ready = Gauge(
            "tryon_seconds_to_ready", "Seconds from start to SERVING (0 until then).", registry=r
        )
        self.cache_lookups = Counter(
            "tryon_cache_lookups",
            "Cache lookups by cache and result (hit, miss).",
            ["cache", "result"],
            registry=r,
        )
        self.ready = Gauge("tryon_ready", "1 once the models are loaded and warm.", registry=r)
        self.model = Info("tryon_model", "The weights being served.", registry=r)
        self._http = None

    def cache_observer(self, cache: str):
        """A callback for `BoundedCache(on_lookup=...)` counting hits and misses of `cache`."""
        hits = self.cache_lookups.labels(cache, "hit")
        misses = self.cache_lookups.labels(cache, "miss")
        return lambda hit: (hits if hit else misses).inc()

    def cache_size_observer(self, cache: str):
        """A callback for `BoundedCache(on_change=...)` keeping the bytes and entries of `cache`."""
        held_bytes = self.cache_bytes.labels(cache)
        held_entries = self.cache_entries.labels(cache)

        def observe(entries: int, weight: int) -> None:
            held_entries.set(entries)
            held_bytes.set(weight)

        return observe

    def observe_batch(self, size: int, waits: list[float]) -> None:
        """Record one model batch: its size and how long each item waited."""
        self.batch_size.observe(size)
        for wait in waits:
            self.queue_time.observe(wait)

    def serve(self, host: str, port: int) -> int:
        """Serve `/metrics` over HTTP on `port` (0: a free one); return the port."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        self._http = server
        return server.server_port

    def close(self) -> None:
        """Stop the HTTP server, if serving."""
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
