"""Warm-up, overload, deadlines, cancellation, failures and shutdown, with a pipeline the
tests can hold at a gate."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from loopback import loopback_settings, shopper

from catalog.database import create_catalog_engine, make_sessionmaker
from tryon.client import ServiceError, TryOnClient
from tryon.server.app import ServerThread
from tryon.server.errors import INTERNAL_MESSAGE
from tryon.server.gen.tryon.v1 import tryon_pb2


class GatedPipeline:
    """The tiny pipeline with hooks: `try_on` and `analyse_person` wait at their gates,
    `dressed` counts the pairs dressed, `fail_with` makes `try_on` raise, and
    `confidence` overrides what the analysis reports (by default a sure one: random
    weights are never sure, and most tests here are not about confidence)."""

    def __init__(self, inner) -> None:  # noqa: ANN001
        self.inner = inner
        self.analysis_gate = threading.Event()
        self.try_on_gate = threading.Event()
        self.analysis_gate.set()
        self.try_on_gate.set()
        self.in_try_on = threading.Event()
        self.dressed = 0
        self.fail_with: Exception | None = None
        self.confidence: tuple[float, str | None] = (0.9, None)

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self.inner, name)

    def analyse_person(self, photo):  # noqa: ANN001, ANN201
        assert self.analysis_gate.wait(20)
        analysis = self.inner.analyse_person(photo)
        confidence, reason = self.confidence
        analysis = dataclasses.replace(analysis, confidence=confidence, reason=reason)
        return analysis

    def try_on(self, analyses, garments, masks):  # noqa: ANN001, ANN201
        self.in_try_on.set()
        assert self.try_on_gate.wait(20)
        if self.fail_with is not None:
            raise self.fail_with
        self.dressed += len(analyses)
        return self.inner.try_on(analyses, garments, masks)


@pytest.fixture()
def gated(pipeline) -> GatedPipeline:
    return GatedPipeline(pipeline)


@pytest.fixture()
def small_server(gated, catalog_url) -> Iterator[ServerThread]:
    """One try-on per batch, two in the queue, no warm-up, confidence of 0.05 needed."""
    settings = loopback_settings(
        catalog_url,
        max_batch=1,
        max_queue=2,
        warmup=False,
        min_confidence=0.05,
        retry_after_ms=300,
    )
    with ServerThread(settings, gated) as running:
        yield running
    gated.try_on_gate.set()


def request(photo: bytes, sku: str = "TEST-0") -> tryon_pb2.TryOnRequest:
    return tryon_pb2.TryOnRequest(person_image=photo, garment_sku=sku)


def health_status(target: str) -> int:
    with grpc.insecure_channel(target) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="tryon.v1.TryOnService"), timeout=5
        )
    return reply.status


def hold_one_call(client: TryOnClient, gated: GatedPipeline, photo: bytes):
    """Start a call and return once it is inside the model, holding the only batch slot."""
    gated.try_on_gate.clear()
    gated.in_try_on.clear()
    future = client.stub.TryOn.future(request(photo), timeout=30)
    assert gated.in_try_on.wait(20)
    return future


def test_a_full_queue_refuses_at_once_with_a_retry_delay(small_server, gated):
    with TryOnClient(small_server.target) as client:
        client.try_on(shopper(20), "TEST-0")  # analysed and cached: later calls are quick
        photo = shopper(20)
        held = hold_one_call(client, gated, photo)
        queued = client.stub.TryOn.future(request(photo), timeout=30)
        time.sleep(0.2)
        start = time.perf_counter()
        with pytest.raises(ServiceError) as refused:
            client.try_on(photo, "TEST-1")
        took = time.perf_counter() - start
        gated.try_on_gate.set()
        assert held.result().garment_sku == queued.result().garment_sku == "TEST-0"
    assert refused.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert refused.value.retry_after_s == pytest.approx(0.3)
    assert took < 1.0


def test_expired_and_cancelled_calls_are_dropped_before_running(gated, catalog_url):
    settings = loopback_settings(catalog_url, max_batch=1, max_queue=3, warmup=False)
    with ServerThread(settings, gated) as running, TryOnClient(running.target) as client:
        photo = shopper(21)
        client.try_on(photo, "TEST-0")
        dressed_before = gated.dressed
        held = hold_one_call(client, gated, photo)
        expiring = client.stub.TryOn.future(request(photo, "TEST-1"), timeout=0.3)
        wait_for_queue_depth(running, 2)
        cancelled = client.stub.TryOn.future(request(photo, "TEST-2"), timeout=30)
        wait_for_queue_depth(running, 3)
        cancelled.cancel()
        with pytest.raises(grpc.RpcError) as expired:
            expiring.result()
        gated.try_on_gate.set()
        held.result()
        client.try_on(photo, "TEST-3")  # the worker moved on past both
    assert expired.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert cancelled.cancelled()
    assert gated.dressed - dressed_before == 2  # the held call and the last one


def wait_for_queue_depth(running: ServerThread, depth: int) -> None:
    """Wait until `depth` try-ons wait or run in the server's queue."""
    for _ in range(400):
        if running.server.engine.queue.depth >= depth:
            return
        time.sleep(0.005)
    raise AssertionError(f"the queue never held {depth} try-ons")


def test_unsure_or_absent_person_is_failed_precondition_with_the_reason(small_server, gated):
    with TryOnClient(small_server.target) as client:
        gated.confidence = (0.01, "the neck and shoulders are not visible")
        with pytest.raises(ServiceError) as unsure:
            client.try_on(shopper(22), "TEST-0")
        gated.confidence = (0.0, "no person found in the photo")
        with pytest.raises(ServiceError) as absent:
            client.try_on(shopper(23), "TEST-0")
    assert unsure.value.code == absent.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "neck and shoulders" in unsure.value.message
    assert "0.05" in unsure.value.message  # the threshold the caller must reach
    assert "no person" in absent.value.message


def test_a_bug_is_internal_without_internals_and_logged_with_traceback(small_server, gated, caplog):
    gated.fail_with = RuntimeError("/srv/models/secret.bin exploded")
    with TryOnClient(small_server.target) as client, pytest.raises(ServiceError) as failure:
        client.try_on(shopper(24), "TEST-0")
    assert failure.value.code == grpc.StatusCode.INTERNAL
    assert failure.value.message == INTERNAL_MESSAGE
    logged = [r for r in caplog.records if r.exc_info and "secret.bin" in str(r.exc_info[1])]
    assert logged, "the traceback is in the log"


def test_database_down_is_unavailable(small_server, monkeypatch):
    broken = create_catalog_engine("sqlite:////nonexistent-folder/catalog.db")
    monkeypatch.setattr(small_server.server.engine.garments, "sessions", make_sessionmaker(broken))
    with TryOnClient(small_server.target) as client, pytest.raises(ServiceError) as failure:
        client.try_on(shopper(25), "TEST-0")
    assert failure.value.code == grpc.StatusCode.UNAVAILABLE
    assert "catalog" in failure.value.message and "nonexistent" not in failure.value.message


def test_health_and_calls_follow_warm_up_then_drain(gated, catalog_url):
    gated.analysis_gate.clear()  # the warm-up batch waits here
    settings = loopback_settings(catalog_url, drain_s=0.6, max_batch=4)
    running = ServerThread(settings, gated, wait_until_ready=False).__enter__()
    stopping = threading.Thread(target=running.close)
    try:
        assert health_status(running.target) == health_pb2.HealthCheckResponse.NOT_SERVING
        with TryOnClient(running.target) as client:
            with pytest.raises(ServiceError) as early:
                client.try_on(shopper(0), "TEST-0")
            assert early.value.code == grpc.StatusCode.UNAVAILABLE
            gated.analysis_gate.set()
            client.wait_until_serving(timeout_s=30)
            assert health_status(running.target) == health_pb2.HealthCheckResponse.SERVING

            # Load, then SIGTERM's path: every accepted call still succeeds.
            gated.try_on_gate.clear()
            photos = [shopper(30 + i) for i in range(6)]
            with ThreadPoolExecutor(6) as pool:
                calls = [pool.submit(client.try_on, p, "TEST-1") for p in photos]
                # Every call accepted (in flight) before the shutdown starts; on a busy
                # machine a fixed sleep was not always enough.
                deadline = time.monotonic() + 20
                while running.server.metrics.in_flight._value.get() < 6:
                    assert time.monotonic() < deadline, "calls were never accepted"
                    time.sleep(0.05)
                stopping.start()
                time.sleep(0.2)
                draining = health_status(running.target)
                time.sleep(0.7)  # past the drain: the server is in stop(grace) now
                gated.try_on_gate.set()
                results = [call.result(timeout=30) for call in calls]
                stopping.join(30)
        assert draining == health_pb2.HealthCheckResponse.NOT_SERVING
        assert [r.garment_sku for r in results] == ["TEST-1"] * 6
    finally:
        gated.analysis_gate.set()
        gated.try_on_gate.set()
        if not stopping.is_alive():
            running.close()  # a no-op when the test got as far as closing it


def test_start_logs_which_weights_serve_and_their_licence(pipeline, catalog_url, caplog):
    caplog.set_level("INFO", logger="tryon.server.engine")
    settings = loopback_settings(catalog_url, warmup=False)

    with ServerThread(settings, pipeline):
        pass

    ready = [r for r in caplog.records if r.getMessage() == "models ready"]
    assert ready, "no 'models ready' line"
    fields = ready[0].fields
    meta = pipeline.meta
    assert (fields["weights"], fields["version"], fields["licence"]) == (
        meta.name,
        meta.version,
        meta.licence,
    )
