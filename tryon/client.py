"""The try-on service's clients as this project's own tools use them (`tryon try-on`,
`tryon demo`, `tryon bench --grpc`, `tryon ab simulate`, the tests).

They are the clients of `tryon_client` (clients/python, the package storefronts install
without PyTorch) with three differences: failures are also `TryOnError`s, so the CLI
prints them as one line; no retries by default, so tools and benchmarks see every
refusal as it happens; and `TryOnClient` polls health, `ExperimentClient` records the
events of `tryon.experiments.events`.

    with TryOnClient("localhost:50051") as client:
        client.wait_until_serving()
        response = client.try_on(Path("me.jpg").read_bytes(), "SKU-1")

    TryOnClient("tryon.example.com:443", api_key=key, tls=TlsOptions())  # system CAs
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import grpc
import tryon_client
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tryon_client import OutputOptions, RetryPolicy, TlsOptions, purchase_event, return_event
from tryon_client.channel import open_channel
from tryon_client.stubs.tryon.v1 import experiments_pb2

from tryon.errors import NotReadyError, TryOnError
from tryon.experiments.events import Event, Purchase

__all__ = [
    "ExperimentClient",
    "GarmentsNotDressedError",
    "OutputOptions",
    "ServiceError",
    "TlsOptions",
    "TryOnClient",
    "event_to_proto",
]

NO_RETRIES = RetryPolicy(max_attempts=1)
# Health polls reconnect within 50-250 ms of a failed attempt instead of gRPC's default
# backoff (1 s, growing 1.6x a try), which added up to 1.8 s to the time a tool waiting
# for a starting server saw it SERVING.
QUICK_RECONNECT = [
    ("grpc.initial_reconnect_backoff_ms", 50),
    ("grpc.min_reconnect_backoff_ms", 50),
    ("grpc.max_reconnect_backoff_ms", 250),
]


class ServiceError(tryon_client.ServiceError, TryOnError):
    """A failed call, as `tryon_client.ServiceError` describes it; also a TryOnError."""


class GarmentsNotDressedError(tryon_client.GarmentsNotDressedError, ServiceError):
    """Some garments of a TryOnMany were not dressed: `errors` maps each SKU to its error."""


@dataclass
class TryOnClient(tryon_client.TryOnClient):
    """`tryon_client.TryOnClient` with TryOnError failures, no retries by default, and
    health polling."""

    retry: RetryPolicy = field(default=NO_RETRIES)

    service_error = ServiceError
    not_dressed_error = GarmentsNotDressedError

    def __post_init__(self) -> None:
        super().__post_init__()
        self.health_channel = open_channel(
            grpc, self.target, self.tls, [*self._options, *QUICK_RECONNECT]
        )
        self.health = health_pb2_grpc.HealthStub(self.health_channel)

    def close(self) -> None:
        self.health_channel.close()
        super().close()

    def serving(self, service: str = "") -> bool:
        """Whether health says SERVING (`service` "" is the whole server)."""
        try:
            reply = self.health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        except grpc.RpcError:
            return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING

    def wait_until_serving(self, timeout_s: float = 120.0) -> float:
        """Poll health until SERVING; return the seconds waited. NotReadyError on timeout."""
        start = time.perf_counter()
        while not self.serving():
            if time.perf_counter() - start > timeout_s:
                raise NotReadyError(
                    f"the try-on service at {self.target} is not SERVING after {timeout_s:.0f} s"
                )
            time.sleep(0.1)
        return time.perf_counter() - start


def event_to_proto(event: Event) -> experiments_pb2.Event:
    """A purchase or return (`tryon.experiments.events`) as the proto `Event`."""
    if isinstance(event, Purchase):
        items = [(item.sku, item.quantity, item.unit_price) for item in event.items]
        return purchase_event(event.event_id, event.unit_id, event.order_id, items, event.time)
    return return_event(
        event.event_id, event.unit_id, event.order_id, event.sku, event.quantity, event.time
    )


@dataclass
class ExperimentClient(tryon_client.ExperimentClient):
    """`tryon_client.ExperimentClient` with TryOnError failures, no retries by default, and
    `record_events` taking `tryon.experiments.events` objects as well as proto events."""

    retry: RetryPolicy = field(default=NO_RETRIES)

    service_error = ServiceError

    def record_events(
        self, experiment_key: str, events: Iterable[Event | experiments_pb2.Event]
    ) -> experiments_pb2.RecordEventsResponse:
        """Store purchases and returns (idempotent on their event ids)."""
        messages = [
            e if isinstance(e, experiments_pb2.Event) else event_to_proto(e) for e in events
        ]
        return super().record_events(experiment_key, messages)
