"""The one place that turns errors into gRPC statuses with google.rpc details.

| error                                 | code                 | details          |
| InvalidInputError (InvalidFieldError) | INVALID_ARGUMENT     | BadRequest       |
| GarmentNotFoundError                  | NOT_FOUND            | ResourceInfo     |
| ExperimentNotFoundError               | NOT_FOUND            | ResourceInfo     |
| ExperimentExistsError                 | ALREADY_EXISTS       |                  |
| ExperimentStateError                  | FAILED_PRECONDITION  | ErrorInfo        |
| NoPersonError                         | FAILED_PRECONDITION  | ErrorInfo        |
| UnsupportedCategoryError              | FAILED_PRECONDITION  | ErrorInfo        |
| UnauthenticatedError                  | UNAUTHENTICATED      | ErrorInfo        |
| KeyRevokedError                       | PERMISSION_DENIED    | ErrorInfo        |
| OverloadedError (RateLimitedError)    | RESOURCE_EXHAUSTED   | RetryInfo        |
| NotReadyError                         | UNAVAILABLE          | RetryInfo        |
| DeadlineExpiredError                  | DEADLINE_EXCEEDED    |                  |
| anything else                         | INTERNAL             | a fixed message  |

Messages of product errors are written for the storefront developer and are sent as
they are; anything else is a bug, sent as a fixed message and logged with its traceback.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from tryon.errors import (
    GarmentNotFoundError,
    InvalidInputError,
    NoPersonError,
    NotReadyError,
    TryOnError,
)
from tryon.experiments.errors import (
    ExperimentExistsError,
    ExperimentNotFoundError,
    ExperimentStateError,
)

ERROR_DOMAIN = "tryon.v1"
INTERNAL_MESSAGE = "internal error; the server logged it under this call's x-request-id"


class InvalidFieldError(InvalidInputError):
    """A request field is unusable; `field` names it as the proto does (`person_image`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class OverloadedError(TryOnError):
    """The queue is full; the caller should retry after `retry_after_s`."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class RateLimitedError(OverloadedError):
    """A caller's API key used up its request rate; it may retry after `retry_after_s`."""


class UnauthenticatedError(TryOnError):
    """The call carries no API key, or one the server does not know."""


class KeyRevokedError(TryOnError):
    """The call's API key was revoked by the operator."""


class UnsupportedCategoryError(TryOnError):
    """The garment's `category` is not one the serving weights can dress (`supported`)."""

    def __init__(self, sku: str, category: str, supported: tuple[str, ...]) -> None:
        super().__init__(
            f"garment `{sku}` is a {category}, and the serving weights dress only "
            f"{', '.join(supported)}; list what they support with ListGarments "
            "(supported_only) or serve weights trained on this category"
        )
        self.sku = sku
        self.category = category
        self.supported = supported


class DeadlineExpiredError(TryOnError):
    """The caller's deadline passed before the work could run."""


class LowConfidenceError(NoPersonError):
    """A person was found but the models are not sure enough about them to dress them."""


@dataclass(frozen=True)
class RpcError:
    """A status to send: code, message, and the google.rpc details packed in a Status."""

    code: grpc.StatusCode
    message: str
    status: status_pb2.Status

    @property
    def trailing_metadata(self) -> tuple[tuple[str, bytes], ...]:
        """The `grpc-status-details-bin` trailer that carries the details."""
        return (("grpc-status-details-bin", self.status.SerializeToString()),)


def to_rpc_error(error: BaseException) -> RpcError:
    """Map any exception to the status the caller sees (see the module's table)."""
    if isinstance(error, InvalidInputError):
        field = (
            getattr(error, "field", None)
            or getattr(error, "column", None)
            or getattr(error, "event_id", None)
            or ""
        )
        violation = error_details_pb2.BadRequest.FieldViolation(
            field=str(field), description=str(error)
        )
        return _status(
            grpc.StatusCode.INVALID_ARGUMENT,
            str(error),
            error_details_pb2.BadRequest(field_violations=[violation]),
        )
    if isinstance(error, GarmentNotFoundError):
        info = error_details_pb2.ResourceInfo(resource_type="garment", description=str(error))
        return _status(grpc.StatusCode.NOT_FOUND, str(error), info)
    if isinstance(error, ExperimentNotFoundError):
        info = error_details_pb2.ResourceInfo(
            resource_type="experiment", resource_name=error.key, description=str(error)
        )
        return _status(grpc.StatusCode.NOT_FOUND, str(error), info)
    if isinstance(error, ExperimentExistsError):
        return _status(grpc.StatusCode.ALREADY_EXISTS, str(error), None)
    if isinstance(error, ExperimentStateError):
        info = error_details_pb2.ErrorInfo(reason="EXPERIMENT_NOT_RUNNING", domain=ERROR_DOMAIN)
        return _status(grpc.StatusCode.FAILED_PRECONDITION, str(error), info)
    if isinstance(error, NoPersonError):
        reason = "LOW_CONFIDENCE" if isinstance(error, LowConfidenceError) else "NO_PERSON"
        info = error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN)
        return _status(grpc.StatusCode.FAILED_PRECONDITION, str(error), info)
    if isinstance(error, UnsupportedCategoryError):
        info = error_details_pb2.ErrorInfo(
            reason="UNSUPPORTED_CATEGORY",
            domain=ERROR_DOMAIN,
            metadata={"category": error.category, "supported": ",".join(error.supported)},
        )
        return _status(grpc.StatusCode.FAILED_PRECONDITION, str(error), info)
    if isinstance(error, UnauthenticatedError):
        info = error_details_pb2.ErrorInfo(reason="API_KEY_INVALID", domain=ERROR_DOMAIN)
        return _status(grpc.StatusCode.UNAUTHENTICATED, str(error), info)
    if isinstance(error, KeyRevokedError):
        info = error_details_pb2.ErrorInfo(reason="API_KEY_REVOKED", domain=ERROR_DOMAIN)
        return _status(grpc.StatusCode.PERMISSION_DENIED, str(error), info)
    if isinstance(error, OverloadedError):
        return _status(
            grpc.StatusCode.RESOURCE_EXHAUSTED, str(error), _retry_info(error.retry_after_s)
        )
    if isinstance(error, DeadlineExpiredError):
        return _status(grpc.StatusCode.DEADLINE_EXCEEDED, str(error), None)
    if isinstance(error, NotReadyError):
        return _status(grpc.StatusCode.UNAVAILABLE, str(error), _retry_info(1.0))
    return _status(grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE, None)


def _retry_info(seconds: float) -> error_details_pb2.RetryInfo:
    delay = duration_pb2.Duration()
    delay.FromMilliseconds(max(1, round(seconds * 1000)))
    return error_details_pb2.RetryInfo(retry_delay=delay)


def _status(code: grpc.StatusCode, message: str, detail) -> RpcError:  # noqa: ANN001
    status = status_pb2.Status(code=getattr(code_pb2, code.name), message=message)
    if detail is not None:
        packed = any_pb2.Any()
        packed.Pack(detail)
        status.details.append(packed)
    return RpcError(code, message, status)
