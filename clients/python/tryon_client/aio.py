"""asyncio clients (`grpc.aio`) of the try-on service and of its A/B experiments: the
same calls, options, retries and errors as `tryon_client.sync`, as coroutines.

    async with AsyncTryOnClient("localhost:50051", api_key=key) as client:
        response = await client.try_on(photo, "SKU-1")
        async for garment in client.list_garments(supported_only=True):
            ...

Create and use a client inside one running event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import ClassVar, TypeVar

import grpc
import grpc.aio

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
Client = TypeVar("Client", bound="_AsyncConnection")


@dataclass
class _AsyncConnection(Connection):
    """A `grpc.aio` channel, and calls with the RESOURCE_EXHAUSTED retry loop."""

    service_error: ClassVar[type[ServiceError]] = ServiceError
    channel: grpc.aio.Channel = field(init=False, repr=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.channel = open_channel(grpc.aio, self.target, self.tls, self._options)

    async def __aenter__(self: Client) -> Client:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the channel; calls still running are cancelled."""
        await self.channel.close()

    async def _unary(self, method: Callable[..., Awaitable[Reply]], request: object) -> Reply:
        deadline = time.monotonic() + self.timeout_s
        attempt = 1
        while True:
            try:
                return await method(
                    request, timeout=deadline - time.monotonic(), metadata=self._metadata()
                )
            except grpc.RpcError as rpc_error:
                error = self.service_error.from_rpc_error(rpc_error)
                delay = self.retry.delay_before_retry(error, attempt, deadline - time.monotonic())
                if delay is None:
                    raise error from None
            await asyncio.sleep(delay)
            attempt += 1

    async def _stream(
        self, method: Callable[..., grpc.aio.UnaryStreamCall], request: object
    ) -> AsyncIterator:
        deadline = time.monotonic() + self.timeout_s
        attempt = 1
        while True:
            call = method(request, timeout=deadline - time.monotonic(), metadata=self._metadata())
            received = False
            try:
                async for reply in call:
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
            await asyncio.sleep(delay)
            attempt += 1


@dataclass
class AsyncTryOnClient(_AsyncConnection):
    """The try-on service (tryon.v2.TryOnService), async; see `TryOnClient`."""

    not_dressed_error: ClassVar[type[GarmentsNotDressedError]] = GarmentsNotDressedError

    def __post_init__(self) -> None:
        super().__post_init__()
        self.stub = tryon_pb2_grpc.TryOnServiceStub(self.channel)

    async def try_on(
        self, photo: bytes, sku: str, output: OutputOptions | None = None, unit_id: str = ""
    ) -> tryon_pb2.TryOnResponse:
        """The shopper in `photo` wearing garment `sku` (see `TryOnClient.try_on`)."""
        return await self._unary(self.stub.TryOn, try_on_request(photo, sku, output, unit_id))

    async def try_on_many(
        self,
        photo: bytes,
        skus: Iterable[str],
        output: OutputOptions | None = None,
        unit_id: str = "",
    ) -> AsyncIterator[tryon_pb2.TryOnResponse]:
        """The shopper in `photo` wearing each of `skus`, as each finishes; then
        GarmentsNotDressedError for the garments not dressed (see `TryOnClient`)."""
        request = try_on_many_request(photo, skus, output, unit_id)
        refused: dict[str, ServiceError] = {}
        async for item in self._stream(self.stub.TryOnMany, request):
            error = garment_error(item, self.service_error)
            if error is None:
                yield item.result
            else:
                refused[item.garment_sku] = error
        if refused:
            raise self.not_dressed_error(refused)

    async def get_garment(self, sku: str) -> tryon_pb2.Garment:
        """The active garment `sku` (NOT_FOUND when there is none)."""
        request = tryon_pb2.GetGarmentRequest(sku=sku)
        return (await self._unary(self.stub.GetGarment, request)).garment

    async def list_garments(
        self, page_size: int = 100, supported_only: bool = False
    ) -> AsyncIterator[tryon_pb2.Garment]:
        """Every active garment in SKU order, page by page (see `TryOnClient`)."""
        token = ""
        while True:
            request = tryon_pb2.ListGarmentsRequest(
                page_size=page_size, page_token=token, supported_only=supported_only
            )
            page = await self._unary(self.stub.ListGarments, request)
            for garment in page.garments:
                yield garment
            token = page.next_page_token
            if not token:
                return


@dataclass
class AsyncExperimentClient(_AsyncConnection):
    """The experiment service, async; see `ExperimentClient`."""

    timeout_s: float = 30.0

    def __post_init__(self) -> None:
        super().__post_init__()
        self.stub = experiments_pb2_grpc.ExperimentServiceStub(self.channel)

    async def assign(self, experiment_key: str, unit_id: str) -> experiments_pb2.AssignResponse:
        """The shopper's arm, the same on every call (recording the first exposure)."""
        request = experiments_pb2.AssignRequest(experiment_key=experiment_key, unit_id=unit_id)
        return await self._unary(self.stub.Assign, request)

    async def record_events(
        self, experiment_key: str, events: Iterable[experiments_pb2.Event]
    ) -> experiments_pb2.RecordEventsResponse:
        """Store purchases and returns; idempotent on their event ids."""
        request = experiments_pb2.RecordEventsRequest(
            experiment_key=experiment_key, events=list(events)
        )
        return await self._unary(self.stub.RecordEvents, request)

    async def results(self, experiment_key: str) -> experiments_pb2.GetResultsResponse:
        """The experiment's report: per-arm figures and comparisons with the control."""
        request = experiments_pb2.GetResultsRequest(experiment_key=experiment_key)
        return await self._unary(self.stub.GetResults, request)
