"""Warm-up, overload, deadlines, cancellation, failures and shutdown, with a pipeline the
tests can hold at a gate."""

from __future__ import annotations

import dataclasses
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from loopback import loopback_settings, shopper
from tryon_client.stubs.tryon.v2 import tryon_pb2

from catalog.database import create_catalog_engine, make_sessionmaker, upgrade
from tryon.client import ServiceError, TryOnClient
from tryon.server.app import ServerThread
from tryon.server.errors import INTERNAL_MESSAGE
from tryon.server.watchdog import LIVENESS_SERVICE

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


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


def health_of(target: str, service: str, timeout_s: float = 5) -> int:
    """The health status of `service`; -1 when the server did not answer in time."""
    with grpc.insecure_channel(target) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout_s
            )
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            return -1
    return reply.status


def scrape(running: ServerThread, name: str) -> float:
    """The value of the unlabelled metric `name` on the server's /metrics page."""
    url = f"http://127.0.0.1:{running.server.metrics_port}/metrics"
    for line in urllib.request.urlopen(url, timeout=5).read().decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} is not exported")


def test_try_ons_in_progress_counts_each_garment_of_a_call(small_server, gated):
    skus = ["TEST-0", "TEST-1", "TEST-2"]
    with TryOnClient(small_server.target) as client:
        photo = shopper(26)
        client.try_on(photo, "TEST-0")
        assert scrape(small_server, "tryon_try_ons_in_progress") == 0
        gated.try_on_gate.clear()
        gated.in_try_on.clear()
        many = tryon_pb2.TryOnManyRequest(person_image=photo, garment_skus=skus)
        # max_queue is 2 on this server: three garments do not fit and are refused.
        with pytest.raises(grpc.RpcError) as refused:
            list(client.stub.TryOnMany(many, timeout=30))
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert scrape(small_server, "tryon_try_ons_in_progress") == 0
        many = tryon_pb2.TryOnManyRequest(person_image=photo, garment_skus=skus[:2])
        with ThreadPoolExecutor(1) as pool:
            results = pool.submit(lambda: list(client.stub.TryOnMany(many, timeout=30)))
            assert gated.in_try_on.wait(20)
            held = scrape(small_server, "tryon_try_ons_in_progress")
            calls = scrape(small_server, "tryon_in_flight_requests")
            gated.try_on_gate.set()
            assert len(results.result()) == 2
    assert (held, calls) == (2, 1)  # try-ons, not calls
    assert scrape(small_server, "tryon_try_ons_in_progress") == 0


def test_liveness_stays_serving_while_draining_and_fails_while_the_loop_is_stuck(
    pipeline, catalog_url, caplog
):
    settings = loopback_settings(catalog_url, warmup=False, drain_s=1.5, stall_s=0.5)
    running = ServerThread(settings, pipeline).__enter__()
    try:
        assert health_of(running.target, LIVENESS_SERVICE) == SERVING
        running.loop.call_soon_threadsafe(time.sleep, 1.5)  # a blocking call on the loop
        during = health_of(running.target, LIVENESS_SERVICE, timeout_s=1.0)
        just_after = health_of(running.target, LIVENESS_SERVICE)
        time.sleep(0.8)  # stall_s on time again
        recovered = health_of(running.target, LIVENESS_SERVICE)

        stopping = threading.Thread(target=running.close)
        stopping.start()
        time.sleep(0.3)
        draining = (
            health_of(running.target, "tryon.v1.TryOnService"),
            health_of(running.target, LIVENESS_SERVICE),
        )
        stopping.join(30)
    finally:
        running.close()
    assert during == -1  # no answer: the probe's timeout fails it
    assert just_after == NOT_SERVING
    assert recovered == SERVING
    assert draining == (NOT_SERVING, SERVING)
    assert any("event loop is stuck" in r.getMessage() for r in caplog.records)


def test_an_unmigrated_database_keeps_the_server_not_serving_until_upgraded(
    pipeline, tmp_path, caplog
):
    caplog.set_level("INFO", logger="tryon.server.app")
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    settings = loopback_settings(url, warmup=False, schema_retry_s=0.1)
    running = ServerThread(settings, pipeline, wait_until_ready=False).__enter__()
    try:
        time.sleep(0.6)
        before = health_of(running.target, "tryon.v1.TryOnService")
        with TryOnClient(running.target) as client:
            with pytest.raises(ServiceError) as early:
                next(client.list_garments())
            engine = create_catalog_engine(url)
            upgrade(engine)
            engine.dispose()
            took = client.wait_until_serving(timeout_s=20)
    finally:
        running.close()
    assert before == NOT_SERVING
    assert early.value.code == grpc.StatusCode.UNAVAILABLE
    assert took < 20
    behind = [r for r in caplog.records if r.getMessage().startswith("database not ready")]
    assert len(behind) == 1, "one line per reason, not one per retry"
    assert "tryon db upgrade" in behind[0].fields["reason"]
    assert any(r.getMessage() == "database schema ready" for r in caplog.records)
