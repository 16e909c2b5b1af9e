"""Purchase and return events as plain objects, and the checks each must pass on its own.

These are what the gRPC API, the CSV importer and the simulation hand to
:func:`tryon.experiments.store.record_events`. The checks here need no database; the
store adds those that do (unknown order, more returned than bought, stopped experiment).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from tryon.experiments.errors import EventError
from tryon.experiments.tables import ID_LENGTH, SKU_LENGTH


@dataclass(frozen=True)
class LineItem:
    """One line of an order: ``quantity`` items of ``sku`` at ``unit_price`` each."""

    sku: str
    quantity: int
    unit_price: float


@dataclass(frozen=True)
class Purchase:
    """A shopper's order; ``event_id`` is the client's idempotency key for it."""

    event_id: str
    unit_id: str
    time: datetime
    order_id: str
    items: tuple[LineItem, ...]


@dataclass(frozen=True)
class Return:
    """Items of one SKU of an earlier order sent back."""

    event_id: str
    unit_id: str
    time: datetime
    order_id: str
    sku: str
    quantity: int


Event = Purchase | Return


def _check_text(event_id: str, field: str, value: str, limit: int) -> None:
    if not value or not value.strip():
        raise EventError(event_id, f"{field} is empty")
    if len(value) > limit:
        raise EventError(event_id, f"{field} has {len(value)} characters, at most {limit} fit")


def _check_quantity(event_id: str, sku: str, quantity: int) -> None:
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
        raise EventError(
            event_id, f"quantity of {sku!r} must be a positive whole number, got {quantity!r}"
        )


def check_event(event: Event) -> None:
    """Raise :class:`EventError`, naming the event, unless it is well-formed on its own."""
    if not event.event_id or len(event.event_id) > ID_LENGTH:
        raise EventError(event.event_id, f"event_id must have 1 to {ID_LENGTH} characters")
    _check_text(event.event_id, "unit_id", event.unit_id, ID_LENGTH)
    _check_text(event.event_id, "order_id", event.order_id, ID_LENGTH)
    if event.time.tzinfo is None or event.time.utcoffset() is None:
        raise EventError(event.event_id, "time has no timezone; send it in UTC or with an offset")
    if isinstance(event, Return):
        _check_text(event.event_id, "sku", event.sku, SKU_LENGTH)
        _check_quantity(event.event_id, event.sku, event.quantity)
        return
    if not event.items:
        raise EventError(event.event_id, f"order {event.order_id!r} has no items")
    seen: set[str] = set()
    for item in event.items:
        _check_text(event.event_id, "sku", item.sku, SKU_LENGTH)
        if item.sku in seen:
            raise EventError(
                event.event_id,
                f"order {event.order_id!r} lists SKU {item.sku!r} twice; "
                "send one line per SKU with the total quantity",
            )
        seen.add(item.sku)
        _check_quantity(event.event_id, item.sku, item.quantity)
        if not math.isfinite(item.unit_price) or item.unit_price < 0:
            raise EventError(
                event.event_id,
                f"unit_price of {item.sku!r} must be a finite amount of 0 or more, "
                f"got {item.unit_price!r}",
            )
