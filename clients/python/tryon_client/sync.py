"""Blocking clients of the try-on service (tryon.v2) and of its A/B experiments
(tryon.v1.ExperimentService). Thread-safe: share one client between threads.

    with TryOnClient("dns:///tryon-headless.tryon.svc.cluster.local:50051",
                     api_key=key, tls=TlsOptions()) as client:
        response = client.try_on(photo, "SKU-1")
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import ClassVar, TypeVar

import grpc

from tryon_client.channel import Connection, open_channel
from tryon_client.errors import GarmentsNotDressedError, ServiceError
from tryon_client.messages import (
    OutputOptions,
    garment_error,
    try_on_many_request,
    try_on_request,
)
from tryon_client.stubs.tryon.v1 import experiments_pb2, experiments_pb2_grpc
from tryon_client.stubs.tryon.v2 import tryon_pb2, tryon_pb2_grpc

Reply = TypeVar("Reply")
Client = TypeVar("Client", bound="_SyncConnection")


@dataclass
class _SyncConnection(Connection):
    """A blocking channel, and calls with the RESOURCE_EXHAUSTED retry loop."""

    # What failures are raised as: a subclass may raise its own ServiceError subclasses.
    service_error: ClassVar[type[ServiceError]] = ServiceError
    channel: grpc.Channel = field(init=False, repr=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.channel = open_channel(grpc, self.target, self.tls, self._options)

    def __enter__(self: Client) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the channel; calls still running are cancelled."""
        self.channel.close()

    def _unary(self, method: Callable[..., Reply], request: object) -> Reply:
        deadline = time.monotonic() + self.timeout_s
        attempt = 1
        while True:
            try:
                return method(
                    request, timeout=deadline - time.monotonic(), metadata=self._metadata()
                )
            except grpc.RpcError as rpc_error:
                error = self.service_error.from_rpc_error(rpc_error)
                delay = self.retry.delay_before_retry(error, attempt, deadline - time.monotonic())
                if delay is None:
                    raise error from None
            time.sleep(delay)
            attempt += 1

    def _stream(self, method: Callable[..., Iterable[Reply]], request: object) -> Iterator[Reply]:
        deadline = time.monotonic() + self.timeout_s
        attempt = 1
        while True:
            call = method(request, timeout=deadline - time.monotonic(), metadata=self._metadata())
            received = False
            try:
                for reply in call:
                    received = True
                    yield reply
                return
            except grpc.RpcError as rpc_error:
                error = self.service_error.from_rpc_error(rpc_error)
                remaining = deadline - time.monotonic()
                delay = self.retry.delay_before_retry(error, attempt, remaining)
                if delay is None or received:  # a retry would repeat the replies yielded
                    raise error from None
            finally:
                call.cancel()  # a no-op once it ended; frees the stream if the caller stopped
            time.sleep(delay)
            attempt += 1


@dataclass
class TryOnClient(_SyncConnection):
    """The try-on service (tryon.v2.TryOnService). Failed calls raise ServiceError."""

    not_dressed_error: ClassVar[type[GarmentsNotDressedError]] = GarmentsNotDressedError

    def __post_init__(self) -> None:
        super().__post_init__()
        self.stub = tryon_pb2_grpc.TryOnServiceStub(self.channel)

    def try_on(
        self, photo: bytes, sku: str, output: OutputOptions | None = None, unit_id: str = ""
    ) -> tryon_pb2.TryOnResponse:
        """The shopper in `photo` (JPEG, PNG or WebP bytes) wearing garment `sku`; with the
        store's pseudonymous `unit_id` for the shopper, the try-on is counted for the
        shopper's experiment arms."""
        return self._unary(self.stub.TryOn, try_on_request(photo, sku, output, unit_id))

    def try_on_many(
        self,
        photo: bytes,
        skus: Iterable[str],
        output: OutputOptions | None = None,
        unit_id: str = "",
    ) -> Iterator[tryon_pb2.TryOnResponse]:
        """The shopper in `photo` wearing each of `skus` (the person is analysed once),
        yielded in the order they finish.

        A garment the server cannot dress (unknown, archived, unsupported category) does
        not stop the others: once they are all yielded, GarmentsNotDressedError names each
        such garment with its error. Iterate rather than `list()` it, or the dressed
        garments are lost with the exception."""
        request = try_on_many_request(photo, skus, output, unit_id)
        refused: dict[str, ServiceError] = {}
        for item in self._stream(self.stub.TryOnMany, request):
            error = garment_error(item, self.service_error)
            if error is None:
                yield item.result
            else:
                refused[item.garment_sku] = error
        if refused:
            raise self.not_dressed_error(refused)

    def get_garment(self, sku: str) -> tryon_pb2.Garment:
        """The active garment `sku` (NOT_FOUND when there is none)."""
        request = tryon_pb2.GetGarmentRequest(sku=sku)
        return self._unary(self.stub.GetGarment, request).garment

    def list_garments(
        self, page_size: int = 100, supported_only: bool = False
    ) -> Iterator[tryon_pb2.Garment]:
        """Every active garment in SKU order (with `supported_only`, only those the serving
        weights can dress), fetched page by page as they are consumed."""
        token = ""
        while True:
            request = tryon_pb2.ListGarmentsRequest(
                page_size=page_size, page_token=token, supported_only=supported_only
            )
            page = self._unary(self.stub.ListGarments, request)
            yield from page.garments
            token = page.next_page_token
            if not token:
                return


@dataclass
class ExperimentClient(_SyncConnection):
    """The experiment service (same server, port, key and TLS as the try-ons). Failed calls
    raise ServiceError."""

    timeout_s: float = 30.0

    def __post_init__(self) -> None:
        super().__post_init__()
        self.stub = experiments_pb2_grpc.ExperimentServiceStub(self.channel)

    def assign(self, experiment_key: str, unit_id: str) -> experiments_pb2.AssignResponse:
        """The shopper's arm, the same on every call (recording the first exposure)."""
        request = experiments_pb2.AssignRequest(experiment_key=experiment_key, unit_id=unit_id)
        return self._unary(self.stub.Assign, request)

    def record_events(
        self, experiment_key: str, events: Iterable[experiments_pb2.Event]
    ) -> experiments_pb2.RecordEventsResponse:
        """Store purchases and returns (`purchase_event`, `return_event`; at most 1,000 a
        call); idempotent on their event ids, so a retried call stores nothing twice."""
        request = experiments_pb2.RecordEventsRequest(
            experiment_key=experiment_key, events=list(events)
        )
        return self._unary(self.stub.RecordEvents, request)

    def results(self, experiment_key: str) -> experiments_pb2.GetResultsResponse:
        """The experiment's report: per-arm figures and comparisons with the control."""
        request = experiments_pb2.GetResultsRequest(experiment_key=experiment_key)
        return self._unary(self.stub.GetResults, request)
