"""tryon.v2 over a loopback server: per-garment statuses in TryOnMany, GetGarment, the
categories the weights declare, and tryon.v1 still answered as released."""

from __future__ import annotations

import dataclasses

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2, status_pb2
from loopback import ARCHIVED_SKU, DRESS_SKU, SKUS, shopper
from tryon_client.stubs.tryon.v1 import tryon_pb2 as v1
from tryon_client.stubs.tryon.v1 import tryon_pb2_grpc as v1_grpc
from tryon_client.stubs.tryon.v2 import tryon_pb2

from tryon.client import GarmentsNotDressedError, ServiceError


@pytest.fixture()
def tops_only(pipeline, monkeypatch):
    """The serving weights declare that they dress tops only."""
    monkeypatch.setattr(pipeline, "meta", dataclasses.replace(pipeline.meta, categories=("top",)))


def error_info(status: status_pb2.Status) -> error_details_pb2.ErrorInfo:
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    raise AssertionError(f"no ErrorInfo in {status}")


def test_one_archived_sku_gets_not_found_and_the_other_garments_are_dressed(stub):
    skus = [SKUS[0], ARCHIVED_SKU, SKUS[1]]
    request = tryon_pb2.TryOnManyRequest(person_image=shopper(40), garment_skus=skus)
    replies = {reply.garment_sku: reply for reply in stub.TryOnMany(request, timeout=30)}
    assert set(replies) == set(skus)
    for sku in (SKUS[0], SKUS[1]):
        assert replies[sku].status.code == code_pb2.OK
        assert replies[sku].result.garment_sku == sku and replies[sku].result.image
    refused = replies[ARCHIVED_SKU]
    assert refused.status.code == code_pb2.NOT_FOUND
    assert ARCHIVED_SKU in refused.status.message
    assert not refused.HasField("result")


def test_the_client_yields_the_dressed_garments_then_names_the_refused_one(client):
    dressed = []
    with pytest.raises(GarmentsNotDressedError) as failure:
        for response in client.try_on_many(shopper(41), [ARCHIVED_SKU, SKUS[2]]):
            dressed.append(response.garment_sku)
    assert dressed == [SKUS[2]]
    assert set(failure.value.errors) == {ARCHIVED_SKU}
    assert failure.value.errors[ARCHIVED_SKU].code == grpc.StatusCode.NOT_FOUND


def test_a_bad_photo_still_fails_the_whole_try_on_many(client):
    with pytest.raises(ServiceError) as failure:
        list(client.try_on_many(b"not a photo", SKUS[:2]))
    assert failure.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "person_image" in failure.value.field_violations


def test_v1_is_answered_as_released(server):
    photo = shopper(42)
    with grpc.insecure_channel(server.target) as channel:
        stub = v1_grpc.TryOnServiceStub(channel)
        one = stub.TryOn(v1.TryOnRequest(person_image=photo, garment_sku=SKUS[0]), timeout=30)
        assert (one.garment_sku, one.width, one.height) == (SKUS[0], 192, 256)
        many = v1.TryOnManyRequest(person_image=photo, garment_skus=SKUS[:2])
        assert sorted(r.garment_sku for r in stub.TryOnMany(many, timeout=30)) == SKUS[:2]
        many = v1.TryOnManyRequest(person_image=photo, garment_skus=[SKUS[0], ARCHIVED_SKU])
        with pytest.raises(grpc.RpcError) as failure:
            list(stub.TryOnMany(many, timeout=30))
        assert failure.value.code() == grpc.StatusCode.NOT_FOUND
        page = stub.ListGarments(v1.ListGarmentsRequest(page_size=2), timeout=10)
        assert [g.sku for g in page.garments] == SKUS[:2] and page.next_page_token


def test_get_garment_returns_an_active_garment_and_not_found_otherwise(client):
    garment = client.get_garment(DRESS_SKU)
    assert (garment.sku, garment.category, garment.supported) == (DRESS_SKU, "dress", True)
    with pytest.raises(ServiceError) as failure:
        client.get_garment(ARCHIVED_SKU)
    assert failure.value.code == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("options", "field"),
    [
        (tryon_pb2.OutputOptions(quality=-1), "output.quality"),
        (tryon_pb2.OutputOptions(max_width=-5), "output.max_width"),
    ],
)
def test_negative_sizes_are_invalid_argument(stub, photo, options, field):
    request = tryon_pb2.TryOnRequest(person_image=photo, garment_sku=SKUS[0], output=options)
    with pytest.raises(grpc.RpcError) as failure:
        stub.TryOn(request, timeout=10)
    error = ServiceError.from_rpc_error(failure.value)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT and field in error.field_violations


def test_weights_that_do_not_say_dress_every_category(client, photo):
    assert client.try_on(photo, DRESS_SKU).garment_sku == DRESS_SKU


def test_a_garment_of_an_unsupported_category_is_failed_precondition(client, photo, tops_only):
    with pytest.raises(ServiceError) as failure:
        client.try_on(photo, DRESS_SKU)
    error = failure.value
    assert error.code == grpc.StatusCode.FAILED_PRECONDITION
    assert error.reason == "UNSUPPORTED_CATEGORY"
    assert "dress" in error.message and "top" in error.message and DRESS_SKU in error.message


def test_try_on_many_refuses_only_the_unsupported_garment(stub, tops_only):
    request = tryon_pb2.TryOnManyRequest(
        person_image=shopper(43), garment_skus=[DRESS_SKU, SKUS[3]]
    )
    replies = {reply.garment_sku: reply for reply in stub.TryOnMany(request, timeout=30)}
    assert replies[SKUS[3]].status.code == code_pb2.OK and replies[SKUS[3]].result.image
    refused = status_pb2.Status.FromString(replies[DRESS_SKU].status.SerializeToString())
    assert refused.code == code_pb2.FAILED_PRECONDITION
    info = error_info(refused)
    assert (info.reason, info.metadata["category"], info.metadata["supported"]) == (
        "UNSUPPORTED_CATEGORY",
        "dress",
        "top",
    )


def test_list_garments_filters_to_what_the_weights_support(client, stub, tops_only):
    assert [g.sku for g in client.list_garments(page_size=2, supported_only=True)] == SKUS
    everything = {g.sku: g for g in client.list_garments()}
    assert everything[DRESS_SKU].supported is False
    assert all(everything[sku].supported for sku in SKUS)
    page = stub.ListGarments(tryon_pb2.ListGarmentsRequest(), timeout=10)
    assert list(page.supported_categories) == ["top"]


def test_the_bundled_weights_declare_tops():
    import json

    from tryon.models.bundle import PIPELINE_CONFIG_NAME, PipelineMeta
    from tryon.pipeline import weights_folder

    for name in ("synthetic", "viton"):
        fields = json.loads((weights_folder(name) / PIPELINE_CONFIG_NAME).read_text())
        fields["resolution"] = tuple(fields["resolution"])
        assert PipelineMeta(**fields).categories == ("top",)
