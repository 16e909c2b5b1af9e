"""`tryon.v2.TryOnService` (and the frozen `tryon.v1` one): converts proto messages to
domain calls and back, nothing more.

Errors are raised as domain errors; `interceptor` turns them into statuses. In a v2
TryOnMany, a garment that cannot be served gets its status in its own stream message
(`errors.to_rpc_error` makes it, as for a failed call). v1 is answered by the same code:
its messages have the v2 messages' field numbers and wire types, so they convert by
re-parsing their bytes; a v1 TryOnMany still fails as a whole on the first such garment.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TypeVar

import grpc
from google.protobuf.message import Message
from tryon_client.stubs.tryon.v1 import tryon_pb2 as tryon_v1_pb2
from tryon_client.stubs.tryon.v1 import tryon_pb2_grpc as tryon_v1_pb2_grpc
from tryon_client.stubs.tryon.v2 import tryon_pb2, tryon_pb2_grpc

from catalog.repository import MAX_PAGE_SIZE, GarmentSummary
from tryon.errors import InvalidInputError
from tryon.server.engine import GarmentRefused, TryOnCall, TryOnEngine, TryOnOutcome
from tryon.server.errors import InvalidFieldError, to_rpc_error
from tryon.server.experiments import TryOnLedger
from tryon.server.output import DEFAULT_QUALITY, OutputSpec

M = TypeVar("M", bound=Message)

DEFAULT_PAGE_SIZE = 50
MAX_SKU_LENGTH = 128
MAX_UNIT_ID_LENGTH = 128
FORMATS = {
    tryon_pb2.IMAGE_FORMAT_UNSPECIFIED: "jpeg",
    tryon_pb2.IMAGE_FORMAT_JPEG: "jpeg",
    tryon_pb2.IMAGE_FORMAT_PNG: "png",
    tryon_pb2.IMAGE_FORMAT_WEBP: "webp",
}


class TryOnServicer(tryon_pb2_grpc.TryOnServiceServicer):
    """The try-on service's methods (tryon.v2); `max_skus` bounds one TryOnMany and
    `max_image_bytes` the photo."""

    def __init__(
        self,
        engine: TryOnEngine,
        max_skus: int,
        max_image_bytes: int,
        ledger: TryOnLedger | None = None,
    ) -> None:
        self.engine = engine
        self.max_skus = max_skus
        self.max_image_bytes = max_image_bytes
        self.ledger = ledger

    async def _counted(self, outcome: TryOnOutcome, unit_id: str) -> tryon_pb2.TryOnResponse:
        """The response for `outcome`, after counting it for the shopper's experiments."""
        if unit_id and self.ledger is not None:
            await self.ledger.record(outcome.tryon_id, outcome.sku, unit_id)
        return to_response(outcome)

    async def TryOn(  # noqa: N802 (the proto's name)
        self, request: tryon_pb2.TryOnRequest, context: grpc.aio.ServicerContext
    ) -> tryon_pb2.TryOnResponse:
        skus = _skus([request.garment_sku], "garment_sku", self.max_skus)
        _check_unit_id(request.unit_id)
        results = self.engine.try_on(self._call(request, skus, context))
        try:
            return await self._counted(await anext(results), request.unit_id)
        finally:
            await results.aclose()

    async def TryOnMany(  # noqa: N802
        self, request: tryon_pb2.TryOnManyRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[tryon_pb2.TryOnManyResponse]:
        skus = _skus(list(request.garment_skus), "garment_skus", self.max_skus)
        _check_unit_id(request.unit_id)
        call = self._call(request, skus, context, partial=True)
        async for outcome in self.engine.try_on(call):
            if isinstance(outcome, GarmentRefused):
                yield tryon_pb2.TryOnManyResponse(
                    garment_sku=outcome.sku,
                    status=_converted(to_rpc_error(outcome.error).status, tryon_pb2.Status),
                )
            else:
                yield tryon_pb2.TryOnManyResponse(
                    garment_sku=outcome.sku,
                    status=tryon_pb2.Status(code=0),
                    result=await self._counted(outcome, request.unit_id),
                )

    async def try_on_each(
        self, request: tryon_pb2.TryOnManyRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[tryon_pb2.TryOnResponse]:
        """TryOnMany as v1 serves it: results only; the first garment that cannot be
        served fails the call."""
        skus = _skus(list(request.garment_skus), "garment_skus", self.max_skus)
        _check_unit_id(request.unit_id)
        async for outcome in self.engine.try_on(self._call(request, skus, context)):
            yield await self._counted(outcome, request.unit_id)

    def _call(
        self,
        request,  # noqa: ANN001 (TryOnRequest or TryOnManyRequest)
        skus: list[str],
        context: grpc.aio.ServicerContext,
        *,
        partial: bool = False,
    ) -> TryOnCall:
        photo = request.person_image
        if not photo:
            raise InvalidFieldError("person_image", "person_image is empty; send the photo's bytes")
        if len(photo) > self.max_image_bytes:
            raise InvalidFieldError(
                "person_image",
                f"the photo is {len(photo) / 2**20:.1f} MiB; at most "
                f"{self.max_image_bytes / 2**20:.0f} MiB are accepted (send a JPEG)",
            )
        return TryOnCall(
            photo=photo,
            skus=skus,
            output=output_spec(request.output),
            timeout_s=context.time_remaining(),
            partial=partial,
        )

    async def ListGarments(  # noqa: N802
        self, request: tryon_pb2.ListGarmentsRequest, context: grpc.aio.ServicerContext
    ) -> tryon_pb2.ListGarmentsResponse:
        page_size = request.page_size or DEFAULT_PAGE_SIZE
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise InvalidFieldError(
                "page_size", f"page_size {page_size} is out of range; use 1-{MAX_PAGE_SIZE}"
            )
        try:
            page = await self.engine.list_garments(
                page_size, request.page_token or None, request.supported_only
            )
        except InvalidInputError as error:  # the catalog did not issue this token
            raise InvalidFieldError("page_token", str(error)) from None
        return tryon_pb2.ListGarmentsResponse(
            garments=[self._garment(g) for g in page.items],
            next_page_token=page.next_page_token or "",
            supported_categories=self.engine.supported_categories or (),
        )

    async def GetGarment(  # noqa: N802
        self, request: tryon_pb2.GetGarmentRequest, context: grpc.aio.ServicerContext
    ) -> tryon_pb2.GetGarmentResponse:
        (sku,) = _skus([request.sku], "sku", 1)
        return tryon_pb2.GetGarmentResponse(
            garment=self._garment(await self.engine.get_garment(sku))
        )

    def _garment(self, garment: GarmentSummary) -> tryon_pb2.Garment:
        supported = self.engine.supported_categories
        return tryon_pb2.Garment(
            sku=garment.sku,
            name=garment.name,
            category=garment.category.value,
            brand=garment.brand or "",
            colour=garment.colour or "",
            revision=garment.revision,
            supported=supported is None or garment.category.value in supported,
        )


class TryOnServicerV1(tryon_v1_pb2_grpc.TryOnServiceServicer):
    """`tryon.v1.TryOnService`, frozen as released, answered by the v2 servicer `current`."""

    def __init__(self, current: TryOnServicer) -> None:
        self.current = current

    async def TryOn(  # noqa: N802
        self, request: tryon_v1_pb2.TryOnRequest, context: grpc.aio.ServicerContext
    ) -> tryon_v1_pb2.TryOnResponse:
        response = await self.current.TryOn(_converted(request, tryon_pb2.TryOnRequest), context)
        return _converted(response, tryon_v1_pb2.TryOnResponse)

    async def TryOnMany(  # noqa: N802
        self, request: tryon_v1_pb2.TryOnManyRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[tryon_v1_pb2.TryOnResponse]:
        current = _converted(request, tryon_pb2.TryOnManyRequest)
        async for response in self.current.try_on_each(current, context):
            yield _converted(response, tryon_v1_pb2.TryOnResponse)

    async def ListGarments(  # noqa: N802
        self, request: tryon_v1_pb2.ListGarmentsRequest, context: grpc.aio.ServicerContext
    ) -> tryon_v1_pb2.ListGarmentsResponse:
        current = _converted(request, tryon_pb2.ListGarmentsRequest)
        response = await self.current.ListGarments(current, context)
        # v2's additions (Garment.supported, supported_categories) would only travel as
        # unknown fields; v1 clients get v1's fields alone.
        return tryon_v1_pb2.ListGarmentsResponse(
            garments=[
                tryon_v1_pb2.Garment(
                    sku=g.sku,
                    name=g.name,
                    category=g.category,
                    brand=g.brand,
                    colour=g.colour,
                    revision=g.revision,
                )
                for g in response.garments
            ],
            next_page_token=response.next_page_token,
        )


def _converted(message: Message, kind: type[M]) -> M:
    """`message` as the message type `kind` with the same field numbers and wire types."""
    return kind.FromString(message.SerializeToString())


def _skus(skus: list[str], field: str, limit: int) -> list[str]:
    if not skus or any(not sku.strip() for sku in skus):
        raise InvalidFieldError(field, f"{field} is empty; name a garment SKU from ListGarments")
    if len(skus) > limit:
        raise InvalidFieldError(field, f"{len(skus)} SKUs in one call; at most {limit}")
    if len(set(skus)) != len(skus):
        raise InvalidFieldError(field, f"{field} repeats a SKU; list each garment once")
    too_long = [sku for sku in skus if len(sku) > MAX_SKU_LENGTH]
    if too_long:
        raise InvalidFieldError(field, f"a SKU is longer than {MAX_SKU_LENGTH} characters")
    return skus


def _check_unit_id(unit_id: str) -> None:
    if len(unit_id) > MAX_UNIT_ID_LENGTH:
        raise InvalidFieldError(
            "unit_id", f"unit_id is longer than {MAX_UNIT_ID_LENGTH} characters"
        )


def output_spec(options: tryon_pb2.OutputOptions) -> OutputSpec:
    """Validate the requested output options (unset fields take the defaults)."""
    fmt = FORMATS.get(options.format)
    if fmt is None:
        raise InvalidFieldError("output.format", f"unknown output format {options.format}")
    if not 0 <= options.quality <= 100:
        raise InvalidFieldError(
            "output.quality", f"quality {options.quality} is out of range; use 1-100 (0: default)"
        )
    for name in ("max_width", "max_height"):
        if getattr(options, name) < 0:
            raise InvalidFieldError(
                f"output.{name}", f"{name} {getattr(options, name)} is negative; 0 means no limit"
            )
    return OutputSpec(
        fmt=fmt,
        quality=options.quality or DEFAULT_QUALITY,
        max_width=options.max_width,
        max_height=options.max_height,
    )


def to_response(outcome: TryOnOutcome) -> tryon_pb2.TryOnResponse:
    """A finished try-on as the proto response."""
    return tryon_pb2.TryOnResponse(
        tryon_id=outcome.tryon_id,
        image=outcome.image.data,
        mime_type=outcome.image.mime_type,
        garment_sku=outcome.sku,
        garment_revision=outcome.revision,
        model_name=outcome.model_name,
        model_version=outcome.model_version,
        confidence=outcome.confidence,
        timings_ms=outcome.timings_ms,
        width=outcome.image.width,
        height=outcome.image.height,
        batch_size=outcome.batch_size,
        person_cached=outcome.person_cached,
    )
