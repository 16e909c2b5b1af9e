"""The requests the clients send, built the same way by the sync and async clients, and
helpers for the experiment events a storefront records."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import status_pb2

from tryon_client.errors import ServiceError
from tryon_client.stubs.tryon.v1 import experiments_pb2
from tryon_client.stubs.tryon.v2 import tryon_pb2

FORMATS = {
    "jpeg": tryon_pb2.IMAGE_FORMAT_JPEG,
    "png": tryon_pb2.IMAGE_FORMAT_PNG,
    "webp": tryon_pb2.IMAGE_FORMAT_WEBP,
}


@dataclass(frozen=True)
class OutputOptions:
    """How results come back: format jpeg/png/webp, quality 1-100, a size box (0: none)."""

    fmt: str = "jpeg"
    quality: int = 90
    max_width: int = 0
    max_height: int = 0

    def to_proto(self) -> tryon_pb2.OutputOptions:
        """The proto message; ValueError for an unknown format."""
        if self.fmt not in FORMATS:
            raise ValueError(f"unknown format {self.fmt!r}, supported: {sorted(FORMATS)}")
        return tryon_pb2.OutputOptions(
            format=FORMATS[self.fmt],
            quality=self.quality,
            max_width=self.max_width,
            max_height=self.max_height,
        )


def try_on_request(
    photo: bytes, sku: str, output: OutputOptions | None, unit_id: str
) -> tryon_pb2.TryOnRequest:
    """The request of TryOn."""
    return tryon_pb2.TryOnRequest(
        person_image=photo,
        garment_sku=sku,
        output=(output or OutputOptions()).to_proto(),
        unit_id=unit_id,
    )


def try_on_many_request(
    photo: bytes, skus: Iterable[str], output: OutputOptions | None, unit_id: str
) -> tryon_pb2.TryOnManyRequest:
    """The request of TryOnMany."""
    return tryon_pb2.TryOnManyRequest(
        person_image=photo,
        garment_skus=list(skus),
        output=(output or OutputOptions()).to_proto(),
        unit_id=unit_id,
    )


def garment_error(
    item: tryon_pb2.TryOnManyResponse, error_type: type[ServiceError]
) -> ServiceError | None:
    """Why the garment of one TryOnMany message was not dressed, or None if it was."""
    if item.status.code == 0:
        return None
    # tryon.v2.Status has google.rpc.Status's field numbers: its bytes decode as one.
    status = status_pb2.Status.FromString(item.status.SerializeToString())
    return error_type.from_status(status.code, status.message, status)


def purchase_event(
    event_id: str,
    unit_id: str,
    order_id: str,
    items: Iterable[tuple[str, int, float]],
    time: datetime | None = None,
) -> experiments_pb2.Event:
    """An order for RecordEvents: `items` are (sku, quantity, unit price); `event_id` is
    unique in the experiment (resending it is harmless); `time` must carry a timezone
    (None: the server's now)."""
    lines = [
        experiments_pb2.LineItem(sku=sku, quantity=quantity, unit_price=price)
        for sku, quantity, price in items
    ]
    return experiments_pb2.Event(
        event_id=event_id,
        unit_id=unit_id,
        time=_timestamp(time),
        purchase=experiments_pb2.Purchase(order_id=order_id, items=lines),
    )


def return_event(
    event_id: str,
    unit_id: str,
    order_id: str,
    sku: str,
    quantity: int,
    time: datetime | None = None,
) -> experiments_pb2.Event:
    """Items of one SKU of an earlier order sent back, for RecordEvents."""
    returned = experiments_pb2.Return(order_id=order_id, sku=sku, quantity=quantity)
    # `return` is a Python keyword, hence the keyword-argument dict.
    return experiments_pb2.Event(
        event_id=event_id, unit_id=unit_id, time=_timestamp(time), **{"return": returned}
    )


def _timestamp(time: datetime | None) -> Timestamp | None:
    if time is None:
        return None
    if time.utcoffset() is None:
        raise ValueError(f"event time {time.isoformat()} has no timezone; give it in UTC")
    stamp = Timestamp()
    stamp.FromDatetime(time)
    return stamp
