"""Hostile photos and requests end in a defined status, never a crash: a seeded subset of
`python -m tryon.server.fuzz` (which runs 10,000), driven by hypothesis."""

from __future__ import annotations

import io
import time

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from tryon_client.stubs.tryon.v2 import tryon_pb2

from tryon.client import ServiceError
from tryon.server.fuzz import (
    DEFINED_CODES,
    PHOTO_KINDS,
    _bombs,
    _seed_files,
    decode_outcome,
    fuzz_server,
    make_case,
    malformed_requests,
    photo_cases,
)

DEFINED_DECODING = ("ok", "INVALID_ARGUMENT")
# Seeded and reproducible; nothing written to a .hypothesis folder.
FUZZ = settings(
    max_examples=150,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@FUZZ
@given(
    kind=st.sampled_from([k for k in PHOTO_KINDS if k != "decompression_bomb"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_generated_hostile_photos_decode_or_are_refused(kind, seed):
    assert decode_outcome(make_case(kind, seed).data) in DEFINED_DECODING


@FUZZ
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_decode_or_are_refused(data):
    assert decode_outcome(data) in DEFINED_DECODING


@FUZZ
@given(
    st.sampled_from(range(len(_seed_files()))),
    st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=12),
    st.floats(0, 1),
)
def test_mutated_and_truncated_photos_decode_or_are_refused(which, changes, keep):
    data = bytearray(_seed_files()[which])
    for where, value in changes:
        data[int(where * len(data))] = value
    assert decode_outcome(bytes(data[: max(1, int(keep * len(data)))])) in DEFINED_DECODING


def test_decompression_bombs_are_refused_or_decoded_within_the_pixel_limit():
    for bomb in _bombs():
        start = time.perf_counter()
        outcome = decode_outcome(bomb)
        assert outcome in DEFINED_DECODING
        assert time.perf_counter() - start < 5.0


def test_hostile_photos_and_malformed_requests_get_defined_statuses_from_a_live_server(server):
    valid = tryon_pb2.TryOnRequest(person_image=_seed_files()[0], garment_sku="TEST-0")
    report = fuzz_server(
        server.target,
        photo_cases(42, seed=7),
        malformed_requests(42, valid.SerializeToString(), seed=7),
        "TEST-0",
    )
    assert report.findings == []
    assert set(report.outcomes) <= DEFINED_CODES
    assert report.by_kind["protobuf_3"] == {"INVALID_ARGUMENT": 6}  # bad UTF-8, was UNKNOWN


def test_an_undecodable_request_is_invalid_argument_naming_the_request(server):
    with grpc.insecure_channel(server.target) as channel:
        raw = channel.unary_unary("/tryon.v2.TryOnService/TryOn")
        with pytest.raises(grpc.RpcError) as refused:
            raw(b"\x0a\xff\xff\xff\xff\x07garbage", timeout=10)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid message" in refused.value.details()


def test_a_sliver_of_a_photo_is_refused_before_it_is_framed(client):
    buffer = io.BytesIO()
    Image.new("RGB", (32, 16_383)).save(buffer, format="WEBP")  # 1 KB; 2 GB when framed
    start = time.perf_counter()
    with pytest.raises(ServiceError) as refused:
        client.try_on(buffer.getvalue(), "TEST-0")
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "32x16383" in refused.value.message
    assert time.perf_counter() - start < 1.0
