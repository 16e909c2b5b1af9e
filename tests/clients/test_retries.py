"""The client's retries, load balancing and metadata against small fake servers that fail
on purpose (no networks, no database): what a storefront sees when a replica is down, a
queue is full or a key is rate-limited."""

from __future__ import annotations

import asyncio
import datetime
import time
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field

import grpc
import pytest
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status
from tryon_client import (
    AsyncTryOnClient,
    GarmentsNotDressedError,
    RetryPolicy,
    ServiceError,
    TryOnClient,
)
from tryon_client.stubs.tryon.v2 import tryon_pb2, tryon_pb2_grpc

KEY = "tryon_0123abcd_" + "s" * 43


def failure(code: int, message: str, retry_after_s: float | None = None) -> status_pb2.Status:
    """A google.rpc.Status as the server sends it, with RetryInfo when given a delay."""
    status = status_pb2.Status(code=code, message=message)
    if retry_after_s is not None:
        delay = duration_pb2.Duration()
        delay.FromTimedelta(datetime.timedelta(seconds=retry_after_s))
        detail = any_pb2.Any()
        detail.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
        status.details.append(detail)
    return status


@dataclass
class FakeService(tryon_pb2_grpc.TryOnServiceServicer):
    """Fails the first calls with `failures`, then answers; records each call."""

    name: str = "fake"
    failures: list[status_pb2.Status] = field(default_factory=list)
    calls: list[tuple[float, dict[str, str], int]] = field(default_factory=list)

    def _record(self, request, context) -> None:  # noqa: ANN001
        metadata = dict(context.invocation_metadata())
        self.calls.append((time.monotonic(), metadata, len(request.person_image)))
        if self.failures:
            context.abort_with_status(rpc_status.to_status(self.failures.pop(0)))

    def TryOn(self, request, context):  # noqa: ANN001, ANN201, N802
        self._record(request, context)
        return tryon_pb2.TryOnResponse(garment_sku=request.garment_sku, model_name=self.name)

    def TryOnMany(self, request, context):  # noqa: ANN001, ANN201, N802
        self._record(request, context)
        for sku in request.garment_skus:
            if sku.startswith("GONE"):
                status = tryon_pb2.Status(code=code_pb2.NOT_FOUND, message=f"no garment {sku}")
                yield tryon_pb2.TryOnManyResponse(garment_sku=sku, status=status)
            else:
                result = tryon_pb2.TryOnResponse(garment_sku=sku, model_name=self.name)
                yield tryon_pb2.TryOnManyResponse(garment_sku=sku, result=result)


@pytest.fixture()
def serve() -> Iterator:
    """Start fake services on free loopback ports: serve(service) -> its address."""
    servers = []

    def start(service: FakeService) -> str:
        server = grpc.server(futures.ThreadPoolExecutor(4))
        tryon_pb2_grpc.add_TryOnServiceServicer_to_server(service, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        return f"127.0.0.1:{port}"

    yield start
    for server in servers:
        server.stop(0)


def test_unavailable_is_retried_by_grpc_even_for_a_photo_above_grpcs_retry_buffer(serve):
    unavailable = failure(code_pb2.UNAVAILABLE, "warming up")
    service = FakeService(failures=[unavailable, unavailable])
    photo = b"\xff" * (1024 * 1024)  # gRPC keeps only 256 KiB for retries by default
    with TryOnClient(serve(service), timeout_s=10) as client:
        assert client.try_on(photo, "SKU-1").garment_sku == "SKU-1"
    assert [size for _, _, size in service.calls] == [len(photo)] * 3


def test_resource_exhausted_is_retried_after_the_servers_retry_delay(serve):
    service = FakeService(failures=[failure(code_pb2.RESOURCE_EXHAUSTED, "queue full", 0.3)])
    with TryOnClient(serve(service), timeout_s=10) as client:
        assert client.try_on(b"photo", "SKU-1").garment_sku == "SKU-1"
    (first, _, _), (second, _, _) = service.calls
    assert second - first >= 0.3


def test_a_retry_delay_beyond_the_policy_is_raised_at_once_with_the_delay(serve):
    service = FakeService(failures=[failure(code_pb2.RESOURCE_EXHAUSTED, "key rate", 30)])
    start = time.monotonic()
    with TryOnClient(serve(service), timeout_s=10) as client, pytest.raises(ServiceError) as error:
        client.try_on(b"photo", "SKU-1")
    assert time.monotonic() - start < 2 and len(service.calls) == 1
    assert error.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.value.retry_after_s == 30 and "key rate" in str(error.value)


def test_resource_exhausted_without_retry_info_is_not_retried(serve):
    service = FakeService(failures=[failure(code_pb2.RESOURCE_EXHAUSTED, "message too big")])
    with TryOnClient(serve(service), timeout_s=10) as client, pytest.raises(ServiceError):
        client.try_on(b"photo", "SKU-1")
    assert len(service.calls) == 1


def test_retries_stop_after_max_attempts_and_within_the_deadline(serve):
    busy = [failure(code_pb2.RESOURCE_EXHAUSTED, "queue full", 0.05) for _ in range(5)]
    service = FakeService(failures=busy)
    policy = RetryPolicy(max_attempts=3)
    with TryOnClient(serve(service), retry=policy) as client, pytest.raises(ServiceError):
        client.try_on(b"photo", "SKU-1")
    assert len(service.calls) == 3
    slow = FakeService(failures=[failure(code_pb2.RESOURCE_EXHAUSTED, "queue full", 1.0)])
    with TryOnClient(serve(slow), timeout_s=0.5) as client, pytest.raises(ServiceError):
        client.try_on(b"photo", "SKU-1")  # waiting 1 s would overrun the deadline
    assert len(slow.calls) == 1


@pytest.mark.parametrize(("policy", "servers_called"), [("round_robin", 2), ("pick_first", 1)])
def test_round_robin_spreads_calls_over_every_address_of_the_target(serve, policy, servers_called):
    services = [FakeService(name="a"), FakeService(name="b")]
    hosts = ",".join(serve(service) for service in services)
    with TryOnClient(f"ipv4:{hosts}", timeout_s=10, load_balancing=policy) as client:
        answered = {client.try_on(b"photo", "SKU-1").model_name for _ in range(8)}
    assert len(answered) == servers_called


def test_the_key_and_request_id_go_with_every_call_and_never_into_reprs_or_errors(serve):
    service = FakeService(failures=[failure(code_pb2.NOT_FOUND, "no garment SKU-9")])
    with TryOnClient(serve(service), request_id="req-1", api_key=KEY + "\n") as client:
        with pytest.raises(ServiceError) as error:
            client.try_on(b"photo", "SKU-9")
        client.try_on(b"photo", "SKU-1")
        shown = repr(client) + str(error.value) + repr(error.value)
    for _, metadata, _ in service.calls:
        assert metadata["authorization"] == f"Bearer {KEY}"  # the file's newline dropped
        assert metadata["x-request-id"] == "req-1"
    assert KEY not in shown and "tryon_0123abcd" not in shown


def test_an_unusable_key_is_refused_without_showing_it():
    with pytest.raises(ValueError, match="tryon keys add") as error:
        TryOnClient("localhost:1", api_key="tryon_0123abcd_se cret")
    assert "se cret" not in str(error.value)


def test_try_on_many_yields_the_dressed_garments_then_names_the_others(serve):
    with TryOnClient(serve(FakeService()), timeout_s=10) as client:
        dressed = []
        with pytest.raises(GarmentsNotDressedError) as error:
            for response in client.try_on_many(b"photo", ["SKU-1", "GONE-2", "SKU-3"]):
                dressed.append(response.garment_sku)
    assert dressed == ["SKU-1", "SKU-3"]
    assert error.value.errors["GONE-2"].code == grpc.StatusCode.NOT_FOUND
    assert "no garment GONE-2" in str(error.value)


def test_the_async_client_retries_a_stream_refused_before_its_first_reply(serve):
    service = FakeService(failures=[failure(code_pb2.RESOURCE_EXHAUSTED, "queue full", 0.1)])
    target = serve(service)

    async def calls() -> tuple[list[str], dict[str, ServiceError]]:
        async with AsyncTryOnClient(target, timeout_s=10, api_key=KEY) as client:
            dressed = []
            with pytest.raises(GarmentsNotDressedError) as error:
                async for response in client.try_on_many(b"photo", ["SKU-1", "GONE-2"]):
                    dressed.append(response.garment_sku)
            assert (await client.try_on(b"photo", "SKU-4")).garment_sku == "SKU-4"
            return dressed, error.value.errors

    dressed, refused = asyncio.run(calls())
    assert dressed == ["SKU-1"] and set(refused) == {"GONE-2"}
    assert len(service.calls) == 3  # the refused stream, its retry, the try-on
    assert all(m["authorization"] == f"Bearer {KEY}" for _, m, _ in service.calls)
