"""TryOnService against a real server on a loopback port, through the generated stubs."""

from __future__ import annotations

import io
import json
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from loopback import ARCHIVED_SKU, DRESS_SKU, SKUS, shopper
from PIL import Image
from tryon_client.stubs.tryon.v2 import tryon_pb2

from tryon.client import OutputOptions, ServiceError


def size_of(data: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(data)).size


def metric(server, name: str, labels: dict[str, str]) -> float:
    return server.server.metrics.registry.get_sample_value(name, labels) or 0.0


def test_try_on_returns_the_photo_dressed_with_what_it_used(client, photo):
    response = client.try_on(photo, "TEST-1")
    assert response.mime_type == "image/jpeg"
    assert size_of(response.image) == (192, 256) == (response.width, response.height)
    assert response.garment_sku == "TEST-1"
    assert response.garment_revision >= 1
    assert (response.model_name, response.model_version) != ("", "")
    assert 0.0 <= response.confidence <= 1.0
    assert {"decode", "queue", "warp", "synthesize", "encode"} <= set(response.timings_ms)
    exif = Image.open(io.BytesIO(response.image)).getexif()
    assert "AI-generated" in exif[0x010E]


def test_a_768x1024_photo_comes_back_768x1024(client):
    response = client.try_on(shopper(3, (1024, 768)), "TEST-0")
    assert (response.width, response.height) == (768, 1024)
    assert size_of(response.image) == (768, 1024)


def test_output_options_choose_format_and_bound_the_size(client, photo):
    response = client.try_on(photo, "TEST-0", OutputOptions(fmt="png", max_width=96))
    assert response.mime_type == "image/png"
    assert size_of(response.image) == (96, 128)  # aspect kept


def decoded(image: bytes) -> np.ndarray:
    """An encoded response image as float RGB pixels."""
    return np.asarray(Image.open(io.BytesIO(image)).convert("RGB"), dtype=np.float32)


def test_a_photo_seen_before_is_not_analysed_again(client):
    photo = shopper(5)
    first = client.try_on(photo, "TEST-0")
    second = client.try_on(photo, "TEST-1")
    again = client.try_on(photo, "TEST-0", OutputOptions(fmt="png"))
    fresh = client.try_on(photo + b"new bytes", "TEST-0", OutputOptions(fmt="png"))
    assert (first.person_cached, second.person_cached) == (False, True)
    assert "parse" in first.timings_ms and "parse" not in second.timings_ms
    assert again.person_cached and not fresh.person_cached
    # The cached analysis dresses exactly like a new one; the two images differ only by
    # their watermarks, which carry each try-on's own id (about 2 grey levels RMS).
    assert again.tryon_id != fresh.tryon_id
    difference = np.abs(decoded(again.image) - decoded(fresh.image))
    assert difference.mean() < 2.5 and np.quantile(difference, 0.999) < 16


def test_try_on_many_streams_every_garment_and_analyses_the_person_once(
    client, pipeline, monkeypatch
):
    analysed = []
    analyse = pipeline.analyse_person
    monkeypatch.setattr(
        pipeline, "analyse_person", lambda photo: analysed.append(1) or analyse(photo)
    )
    responses = list(client.try_on_many(shopper(6), SKUS))
    assert sorted(r.garment_sku for r in responses) == SKUS
    assert all((r.width, r.height) == (192, 256) for r in responses)
    assert len(analysed) == 1


def test_32_concurrent_calls_all_get_their_own_result(server, client):
    photos = [shopper(10 + i % 4) for i in range(32)]
    batches_before = metric(server, "tryon_batch_size_count", {})

    def call(index: int):
        sku = SKUS[index % len(SKUS)]
        return sku, client.try_on(photos[index], sku)

    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(call, range(32)))
    assert all(response.garment_sku == sku for sku, response in results)
    assert all(size_of(response.image) == (192, 256) for _, response in results)
    batches = metric(server, "tryon_batch_size_count", {}) - batches_before
    assert batches < 32  # calls shared batches
    assert max(response.batch_size for _, response in results) > 1


@pytest.mark.parametrize(
    ("request_kwargs", "field"),
    [
        ({"person_image": b"not an image", "garment_sku": "TEST-0"}, "person_image"),
        ({"person_image": b"", "garment_sku": "TEST-0"}, "person_image"),
        ({"garment_sku": ""}, "garment_sku"),
        (
            {"garment_sku": "TEST-0", "output": tryon_pb2.OutputOptions(quality=300)},
            "output.quality",
        ),
    ],
)
def test_bad_requests_are_invalid_argument_naming_the_field(client, photo, request_kwargs, field):
    request = {"person_image": photo, **request_kwargs}
    with pytest.raises(grpc.RpcError) as failure:
        client.stub.TryOn(tryon_pb2.TryOnRequest(**request), timeout=10)
    error = ServiceError.from_rpc_error(failure.value)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert field in error.field_violations


def test_a_photo_over_the_pixel_limit_is_invalid_argument(server, client):
    limit = server.server.settings.max_pixels
    side = int(limit**0.5) + 16
    big = io.BytesIO()
    Image.new("RGB", (side, side), "white").save(big, format="PNG")
    with pytest.raises(ServiceError) as failure:
        client.try_on(big.getvalue(), "TEST-0")
    assert failure.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "person_image" in failure.value.field_violations


def test_repeated_skus_are_invalid_argument(client, photo):
    with pytest.raises(ServiceError) as failure:
        list(client.try_on_many(photo, ["TEST-0", "TEST-0"]))
    assert failure.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "garment_skus" in failure.value.field_violations


@pytest.mark.parametrize("sku", ["NO-SUCH-SKU", ARCHIVED_SKU])
def test_unknown_or_archived_sku_is_not_found(client, photo, sku):
    with pytest.raises(ServiceError) as failure:
        client.try_on(photo, sku)
    assert failure.value.code == grpc.StatusCode.NOT_FOUND
    assert sku in failure.value.message


def test_list_garments_pages_through_the_active_garments(client):
    assert [g.sku for g in client.list_garments(page_size=3)] == [*SKUS, DRESS_SKU]


def test_a_forged_page_token_is_invalid_argument(client):
    with pytest.raises(grpc.RpcError) as failure:
        client.stub.ListGarments(tryon_pb2.ListGarmentsRequest(page_token="_w"), timeout=10)
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_the_request_id_comes_back_in_the_trailers(stub, photo):
    _, call = stub.TryOn.with_call(
        tryon_pb2.TryOnRequest(person_image=photo, garment_sku="TEST-0"),
        metadata=(("x-request-id", "order-42"),),
        timeout=30,
    )
    assert ("x-request-id", "order-42") in call.trailing_metadata()


def test_health_is_serving_overall_and_for_the_service(server):
    with grpc.insecure_channel(server.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "tryon.v1.TryOnService"):
            reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_the_services(server):
    with grpc.insecure_channel(server.target) as channel:
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        reply = next(reflection.ServerReflectionInfo(iter([request]), timeout=5))
    names = {service.name for service in reply.list_services_response.service}
    assert {"tryon.v1.TryOnService", "grpc.health.v1.Health"} <= names


def test_metrics_count_calls_by_method_and_code(server, client, photo):
    client.try_on(photo, "TEST-2")
    with pytest.raises(ServiceError):
        client.try_on(photo, "NO-SUCH-SKU")
    url = f"http://127.0.0.1:{server.server.metrics_port}/metrics"
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    assert 'tryon_requests_total{code="OK",method="TryOn"}' in text
    assert 'tryon_requests_total{code="NOT_FOUND",method="TryOn"}' in text
    for name in ("tryon_in_flight_requests", "tryon_queue_seconds_bucket", "tryon_batch_size"):
        assert name in text
    assert 'tryon_model_info{licence="test",name="tiny"' in text
    assert "process_resident_memory_bytes" in text


def test_log_lines_are_json_with_the_request_id_and_no_photo(stub, photo, caplog):
    from tryon.server.logs import JsonFormatter

    caplog.set_level("INFO", logger="tryon")
    stub.TryOn(
        tryon_pb2.TryOnRequest(person_image=photo, garment_sku="TEST-0"),
        metadata=(("x-request-id", "log-check-1"),),
        timeout=30,
    )
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records if r.message == "call"]
    line = next(entry for entry in lines if entry.get("request_id") == "log-check-1")
    assert (line["method"], line["code"]) == ("TryOn", "OK")
    assert all(len(json.dumps(entry)) < 1000 for entry in lines)  # no image bytes


@pytest.mark.parametrize("seen_photos", [False, True])
def test_bench_load_sends_new_or_seen_photos_as_asked(server, seen_photos):
    from tryon.bench_grpc import run_load

    labels = {"cache": "person"}
    hits_before = metric(server, "tryon_cache_lookups_total", {**labels, "result": "hit"})
    misses_before = metric(server, "tryon_cache_lookups_total", {**labels, "result": "miss"})
    photos = [shopper(70 + index) for index in range(2)]

    run = run_load(server.target, photos, SKUS[:2], 1, 1.0, seen_photos)
    latencies, errors = run.latencies, run.errors

    hits = metric(server, "tryon_cache_lookups_total", {**labels, "result": "hit"}) - hits_before
    misses = (
        metric(server, "tryon_cache_lookups_total", {**labels, "result": "miss"}) - misses_before
    )
    assert latencies and not errors
    if seen_photos:  # each photo analysed once before the clock starts, then always cached
        assert (misses, hits) == (len(photos), len(latencies))
    else:  # every timed call brings a photo the server has never seen
        assert (misses, hits) == (len(latencies), 0)
