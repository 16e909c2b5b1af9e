"""Clients of the try-on service (`tryon try-on`, `tryon demo`, `tryon bench --grpc`) and
of its A/B experiments (`tryon ab simulate`).

    with TryOnClient("localhost:50051") as client:
        client.wait_until_serving()
        response = client.try_on(Path("me.jpg").read_bytes(), "SKU-1")
        Path("me-in-sku-1.jpg").write_bytes(response.image)

    TryOnClient("tryon.example.com:443", api_key=key, tls=TlsOptions())  # system CAs

Failed calls raise `ServiceError`, which carries the status code, the server's message and
its google.rpc details (the field at fault, the reason, the suggested retry delay). The
try-on calls use `tryon.v2`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from tryon.errors import NotReadyError, TryOnError
from tryon.experiments.events import Event, Purchase
from tryon.server.gen.tryon.v1 import experiments_pb2, experiments_pb2_grpc
from tryon.server.gen.tryon.v2 import tryon_pb2, tryon_pb2_grpc

RESPONSE_LIMIT = 64 * 1024 * 1024  # a PNG of a large photo is bigger than any request
FORMATS = {
    "jpeg": tryon_pb2.IMAGE_FORMAT_JPEG,
    "png": tryon_pb2.IMAGE_FORMAT_PNG,
    "webp": tryon_pb2.IMAGE_FORMAT_WEBP,
}


class ServiceError(TryOnError):
    """A call (or one garment of a TryOnMany) failed: `code` (grpc.StatusCode), the
    server's message, and from its details `field_violations` ({field: description}),
    `retry_after_s` and `reason` (ErrorInfo, e.g. "UNSUPPORTED_CATEGORY")."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        field_violations: dict[str, str] | None = None,
        retry_after_s: float | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.field_violations = field_violations or {}
        self.retry_after_s = retry_after_s
        self.reason = reason

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> ServiceError:
        """Read the code, message and google.rpc details of a failed call."""
        return cls.from_status(error.code(), error.details() or "", rpc_status.from_call(error))

    @classmethod
    def from_status(
        cls, code: grpc.StatusCode, message: str, status: status_pb2.Status | None
    ) -> ServiceError:
        """An error from a code, message and google.rpc.Status (with its details)."""
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
        return cls(code, message, violations, retry_after, reason)


class GarmentsNotDressedError(ServiceError):
    """Some garments of a TryOnMany were not dressed (the others were): `errors` maps each
    such SKU to its ServiceError; `code` and the message are the first one's."""

    def __init__(self, errors: dict[str, ServiceError]) -> None:
        first = next(iter(errors.values()))
        listed = "; ".join(f"{sku}: {error}" for sku, error in errors.items())
        super().__init__(first.code, f"{len(errors)} garment(s) not dressed: {listed}")
        self.errors = errors


@dataclass(frozen=True)
class OutputOptions:
    """How results come back: format jpeg/png/webp, quality 1-100, a size box (0: none)."""

    fmt: str = "jpeg"
    quality: int = 90
    max_width: int = 0
    max_height: int = 0

    def to_proto(self) -> tryon_pb2.OutputOptions:
        if self.fmt not in FORMATS:
            raise TryOnError(f"unknown format {self.fmt!r}, supported: {sorted(FORMATS)}")
        return tryon_pb2.OutputOptions(
            format=FORMATS[self.fmt],
            quality=self.quality,
            max_width=self.max_width,
            max_height=self.max_height,
        )


@dataclass(frozen=True)
class TlsOptions:
    """TLS for a client channel: `root_certificates` (PEM) to trust, None for the
    system's CAs; `certificate_chain` and `private_key` (PEM): the client certificate a
    mutual-TLS server asks for."""

    root_certificates: bytes | None = None
    certificate_chain: bytes | None = None
    private_key: bytes | None = None


def open_channel(
    target: str, tls: TlsOptions | None = None, options: list[tuple[str, int]] | None = None
) -> grpc.Channel:
    """A channel to `target`: TLS with `tls`, plaintext without."""
    if tls is None:
        return grpc.insecure_channel(target, options=options)
    credentials = grpc.ssl_channel_credentials(
        tls.root_certificates, tls.private_key, tls.certificate_chain
    )
    return grpc.secure_channel(target, credentials, options=options)


def key_metadata(api_key: str | None) -> tuple[tuple[str, str], ...]:
    """The API key as call metadata (`authorization: Bearer <key>`; none without a key)."""
    return (("authorization", f"Bearer {api_key}"),) if api_key else ()


@dataclass
class TryOnClient:
    """A channel to one server; `timeout_s` is each call's deadline; `api_key` is sent with
    every call; `tls` makes the channel TLS. Thread-safe."""

    target: str
    timeout_s: float = 60.0
    request_id: str | None = None
    api_key: str | None = field(default=None, repr=False)
    tls: TlsOptions | None = None
    channel: grpc.Channel = field(init=False)

    def __post_init__(self) -> None:
        self.channel = open_channel(
            self.target, self.tls, options=[("grpc.max_receive_message_length", RESPONSE_LIMIT)]
        )
        self.stub = tryon_pb2_grpc.TryOnServiceStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)

    def __enter__(self) -> TryOnClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.channel.close()

    def try_on(
        self, photo: bytes, sku: str, output: OutputOptions | None = None, unit_id: str = ""
    ) -> tryon_pb2.TryOnResponse:
        """The shopper in `photo` wearing garment `sku`; with the store's `unit_id` for the
        shopper, the try-on is counted for the shopper's experiment arms."""
        request = tryon_pb2.TryOnRequest(
            person_image=photo,
            garment_sku=sku,
            output=(output or OutputOptions()).to_proto(),
            unit_id=unit_id,
        )
        try:
            return self.stub.TryOn(request, timeout=self.timeout_s, metadata=self._metadata())
        except grpc.RpcError as error:
            raise ServiceError.from_rpc_error(error) from None

    def try_on_many(
        self,
        photo: bytes,
        skus: list[str],
        output: OutputOptions | None = None,
        unit_id: str = "",
    ) -> Iterator[tryon_pb2.TryOnResponse]:
        """The shopper in `photo` wearing each of `skus`, in the order they finish.

        A garment the server cannot dress (unknown, archived, unsupported category) does
        not stop the others: once they are all yielded, GarmentsNotDressedError names each
        such garment with its error."""
        request = tryon_pb2.TryOnManyRequest(
            person_image=photo,
            garment_skus=skus,
            output=(output or OutputOptions()).to_proto(),
            unit_id=unit_id,
        )
        refused: dict[str, ServiceError] = {}
        try:
            for item in self.stub.TryOnMany(
                request, timeout=self.timeout_s, metadata=self._metadata()
            ):
                if item.status.code == 0:
                    yield item.result
                else:
                    status = status_pb2.Status.FromString(item.status.SerializeToString())
                    code = _STATUS_CODES.get(status.code, grpc.StatusCode.UNKNOWN)
                    refused[item.garment_sku] = ServiceError.from_status(
                        code, status.message, status
                    )
        except grpc.RpcError as error:
            raise ServiceError.from_rpc_error(error) from None
        if refused:
            raise GarmentsNotDressedError(refused)

    def get_garment(self, sku: str) -> tryon_pb2.Garment:
        """The active garment `sku`."""
        request = tryon_pb2.GetGarmentRequest(sku=sku)
        try:
            reply = self.stub.GetGarment(request, timeout=self.timeout_s, metadata=self._metadata())
        except grpc.RpcError as error:
            raise ServiceError.from_rpc_error(error) from None
        return reply.garment

    def list_garments(
        self, page_size: int = 100, supported_only: bool = False
    ) -> Iterator[tryon_pb2.Garment]:
        """Every active garment (only those the serving weights can dress, with
        `supported_only`), page by page."""
        token = ""
        while True:
            request = tryon_pb2.ListGarmentsRequest(
                page_size=page_size, page_token=token, supported_only=supported_only
            )
            try:
                page = self.stub.ListGarments(
                    request, timeout=self.timeout_s, metadata=self._metadata()
                )
            except grpc.RpcError as error:
                raise ServiceError.from_rpc_error(error) from None
            yield from page.garments
            token = page.next_page_token
            if not token:
                return

    def serving(self, service: str = "") -> bool:
        """Whether health says SERVING (`service` "" is the whole server)."""
        try:
            reply = self.health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        except grpc.RpcError:
            return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING

    def wait_until_serving(self, timeout_s: float = 120.0) -> float:
        """Poll health until SERVING; return the seconds waited. NotReadyError on timeout."""
        start = time.perf_counter()
        while not self.serving():
            if time.perf_counter() - start > timeout_s:
                raise NotReadyError(
                    f"the try-on service at {self.target} is not SERVING after {timeout_s:.0f} s"
                )
            time.sleep(0.1)
        return time.perf_counter() - start

    def _metadata(self) -> tuple[tuple[str, str], ...]:
        request_id = (("x-request-id", self.request_id),) if self.request_id else ()
        return (*request_id, *key_metadata(self.api_key))


# google.rpc.Code numbers (as per-garment statuses carry them) to gRPC's status codes.
_STATUS_CODES = {code.value[0]: code for code in grpc.StatusCode}


def event_to_proto(event: Event) -> experiments_pb2.Event:
    """A purchase or return (`tryon.experiments.events`) as the proto `Event`."""
    when = Timestamp()
    when.FromDatetime(event.time)
    if isinstance(event, Purchase):
        items = [
            experiments_pb2.LineItem(sku=i.sku, quantity=i.quantity, unit_price=i.unit_price)
            for i in event.items
        ]
        return experiments_pb2.Event(
            event_id=event.event_id,
            unit_id=event.unit_id,
            time=when,
            purchase=experiments_pb2.Purchase(order_id=event.order_id, items=items),
        )
    returned = experiments_pb2.Return(
        order_id=event.order_id, sku=event.sku, quantity=event.quantity
    )
    return experiments_pb2.Event(
        event_id=event.event_id, unit_id=event.unit_id, time=when, **{"return": returned}
    )


@dataclass
class ExperimentClient:
    """A channel to the experiment service (same server and port as the try-ons, and the
    same `api_key` and `tls` options)."""

    target: str
    timeout_s: float = 30.0
    api_key: str | None = field(default=None, repr=False)
    tls: TlsOptions | None = None
    channel: grpc.Channel = field(init=False)

    def __post_init__(self) -> None:
        self.channel = open_channel(self.target, self.tls)
        self.stub = experiments_pb2_grpc.ExperimentServiceStub(self.channel)

    def __enter__(self) -> ExperimentClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.channel.close()

    def assign(self, experiment_key: str, unit_id: str) -> experiments_pb2.AssignResponse:
        """The shopper's arm (recording the first exposure)."""
        request = experiments_pb2.AssignRequest(experiment_key=experiment_key, unit_id=unit_id)
        return self._call(self.stub.Assign, request)

    def record_events(
        self, experiment_key: str, events: list[Event]
    ) -> experiments_pb2.RecordEventsResponse:
        """Store purchases and returns (idempotent on their event ids)."""
        request = experiments_pb2.RecordEventsRequest(
            experiment_key=experiment_key, events=[event_to_proto(e) for e in events]
        )
        return self._call(self.stub.RecordEvents, request)

    def results(self, experiment_key: str) -> experiments_pb2.GetResultsResponse:
        """The experiment's report."""
        request = experiments_pb2.GetResultsRequest(experiment_key=experiment_key)
        return self._call(self.stub.GetResults, request)

    def _call(self, method, request):  # noqa: ANN001, ANN202 (any unary stub method)
        try:
            return method(request, timeout=self.timeout_s, metadata=key_metadata(self.api_key))
        except grpc.RpcError as error:
            raise ServiceError.from_rpc_error(error) from None
