"""Errors of calls to the try-on service, with what the server said about them.

The server puts google.rpc details in the `grpc-status-details-bin` trailer (the field at
fault, the reason, when to retry) and a request id in the `x-request-id` trailer; a
`ServiceError` reads both, so callers need neither grpcio-status nor the trailers.
"""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2, status_pb2

STATUS_DETAILS_KEY = "grpc-status-details-bin"
REQUEST_ID_KEY = "x-request-id"

# google.rpc.Code numbers (what per-garment statuses carry) to gRPC's status codes.
_CODES = {code.value[0]: code for code in grpc.StatusCode}


class ServiceError(Exception):
    """A call (or one garment of a TryOnMany) failed.

    Attributes:
        code: the `grpc.StatusCode`.
        message: the server's message: what is wrong and what to do about it.
        field_violations: {request field: what is wrong with it} (INVALID_ARGUMENT).
        retry_after_s: the server's suggested delay before a retry (RESOURCE_EXHAUSTED,
            UNAVAILABLE), or None.
        reason: the ErrorInfo reason, e.g. "UNSUPPORTED_CATEGORY", or None.
        request_id: the id the server logged the call under (quote it when asking the
            operator), or None.
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        field_violations: dict[str, str] | None = None,
        retry_after_s: float | None = None,
        reason: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.field_violations = field_violations or {}
        self.retry_after_s = retry_after_s
        self.reason = reason
        self.request_id = request_id

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> ServiceError:
        """The code, message, google.rpc details and request id of a failed call (sync or
        `grpc.aio`)."""
        status = request_id = None
        for key, value in error.trailing_metadata() or ():
            if key == STATUS_DETAILS_KEY:
                status = status_pb2.Status.FromString(value)
            elif key == REQUEST_ID_KEY:
                request_id = value
        return cls.from_status(error.code(), error.details() or "", status, request_id)

    @classmethod
    def from_status(
        cls,
        code: grpc.StatusCode | int,
        message: str,
        status: status_pb2.Status | None,
        request_id: str | None = None,
    ) -> ServiceError:
        """An error from a code (gRPC's, or its google.rpc.Code number), a message and a
        google.rpc.Status with its details."""
        if isinstance(code, int):
            code = _CODES.get(code, grpc.StatusCode.UNKNOWN)
        violations: dict[str, str] = {}
        retry_after = reason = None
        for detail in status.details if status is not None else ():
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                request = error_details_pb2.BadRequest()
                detail.Unpack(request)
                violations.update({v.field: v.description for v in request.field_violations})
            elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                info = error_details_pb2.RetryInfo()
                detail.Unpack(info)
                retry_after = info.retry_delay.ToTimedelta().total_seconds()
            elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason = info.reason
        return cls(code, message, violations, retry_after, reason, request_id)


class GarmentsNotDressedError(ServiceError):
    """Some garments of a TryOnMany were not dressed (the others were yielded before it):
    `errors` maps each such SKU to its ServiceError; `code` and the message are the first
    one's."""

    def __init__(self, errors: dict[str, ServiceError]) -> None:
        first = next(iter(errors.values()))
        listed = "; ".join(f"{sku}: {error}" for sku, error in errors.items())
        super().__init__(first.code, f"{len(errors)} garment(s) not dressed: {listed}")
        self.errors = errors
