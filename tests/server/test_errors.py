"""The one error mapping: codes, details a client can read, no internals leaked."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2

from catalog.errors import FieldError
from tryon.errors import GarmentNotFoundError, NoPersonError, NotReadyError, WeightsError
from tryon.server.errors import (
    INTERNAL_MESSAGE,
    InvalidFieldError,
    LowConfidenceError,
    OverloadedError,
    to_rpc_error,
)


def detail(rpc, kind):
    for packed in rpc.status.details:
        if packed.Is(kind.DESCRIPTOR):
            message = kind()
            packed.Unpack(message)
            return message
    raise AssertionError(f"no {kind.__name__} in {rpc.status}")


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InvalidFieldError("person_image", "not an image"), grpc.StatusCode.INVALID_ARGUMENT),
        (GarmentNotFoundError("no active garment has SKU `X`"), grpc.StatusCode.NOT_FOUND),
        (NoPersonError("no person"), grpc.StatusCode.FAILED_PRECONDITION),
        (LowConfidenceError("unsure"), grpc.StatusCode.FAILED_PRECONDITION),
        (OverloadedError("full", 0.25), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (NotReadyError("warming up"), grpc.StatusCode.UNAVAILABLE),
        (WeightsError("weights gone"), grpc.StatusCode.INTERNAL),
        (KeyError("secret internals"), grpc.StatusCode.INTERNAL),
    ],
)
def test_each_error_class_has_its_status_code(error, code):
    assert to_rpc_error(error).code == code


def test_bad_request_names_the_field():
    rpc = to_rpc_error(InvalidFieldError("output.quality", "quality 300 is out of range"))
    violation = detail(rpc, error_details_pb2.BadRequest).field_violations[0]
    assert (violation.field, violation.description) == (
        "output.quality",
        "quality 300 is out of range",
    )


def test_catalog_field_errors_keep_their_field():
    rpc = to_rpc_error(FieldError("sku", "is empty"))
    assert detail(rpc, error_details_pb2.BadRequest).field_violations[0].field == "sku"


def test_overload_suggests_when_to_retry():
    rpc = to_rpc_error(OverloadedError("full", 0.25))
    delay = detail(rpc, error_details_pb2.RetryInfo).retry_delay
    assert delay.ToMilliseconds() == 250


def test_failed_precondition_says_which_kind():
    assert detail(to_rpc_error(LowConfidenceError("x")), error_details_pb2.ErrorInfo).reason == (
        "LOW_CONFIDENCE"
    )
    assert detail(to_rpc_error(NoPersonError("x")), error_details_pb2.ErrorInfo).reason == (
        "NO_PERSON"
    )


def test_unexpected_errors_send_a_fixed_message():
    rpc = to_rpc_error(RuntimeError("/srv/secret/path failed"))
    assert rpc.message == INTERNAL_MESSAGE
    assert "secret" not in rpc.status.SerializeToString().decode(errors="ignore")
