"""Reading and writing garments: the one place that queries the catalog's tables.

Every function takes a :class:`~sqlalchemy.orm.Session` and never commits: the CLI
command or the service call that uses it owns the transaction (``with session.begin():``).
The service needs only :func:`get_active_garment`, :func:`get_active_revision` and
:func:`list_active_garments`.
"""

from __future__ import annotations

import base64
import binascii
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, undefer

from catalog.errors import GarmentExistsError, GarmentNotFoundError
from catalog.images import EncodedImage
from catalog.models import Category, Garment, GarmentImage, ImageKind, MaskSource, Status, utcnow
from tryon.errors import InvalidInputError

MAX_PAGE_SIZE = 500


@dataclass(frozen=True)
class GarmentFields:
    """What a merchandiser says about a garment (everything but its images and status)."""

    sku: str
    name: str
    category: Category
    brand: str | None = None
    colour: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class GarmentImages:
    """A garment's photo and mask, encoded, with where the mask came from."""

    photo: EncodedImage
    mask: EncodedImage
    mask_source: MaskSource


class SaveOutcome(str, enum.Enum):
    """What saving a garment did to the catalog."""

    ADDED = "added"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class GarmentAssets:
    """An active garment as the service needs it; ``revision`` is the cache key."""

    sku: str
    name: str
    category: Category
    revision: int
    image: bytes
    image_mime_type: str
    mask: bytes
    mask_mime_type: str


@dataclass(frozen=True)
class GarmentSummary:
    """One entry of a page of active garments."""

    sku: str
    name: str
    category: Category
    brand: str | None
    colour: str | None
    revision: int


@dataclass(frozen=True)
class GarmentPage:
    """A page of active garments; pass ``next_page_token`` back for the next one (None: done)."""

    items: list[GarmentSummary]
    next_page_token: str | None


def find_garment(session: Session, sku: str, *, with_image_data: bool = False) -> Garment | None:
    """The garment with ``sku`` whatever its status, or ``None``."""
    query = select(Garment).where(Garment.sku == sku)
    loader = selectinload(Garment.images)
    query = query.options(loader.options(undefer(GarmentImage.data)) if with_image_data else loader)
    return session.scalars(query).one_or_none()


def get_garment(session: Session, sku: str, *, with_image_data: bool = False) -> Garment:
    """The garment with ``sku`` whatever its status; raise GarmentNotFoundError if none."""
    garment = find_garment(session, sku, with_image_data=with_image_data)
    if garment is None:
        raise GarmentNotFoundError(f"no garment with SKU `{sku}` in the catalog")
    return garment


def list_garments(
    session: Session,
    *,
    status: Status | None = None,
    category: Category | None = None,
    with_image_data: bool = False,
) -> Sequence[Garment]:
    """All garments, filtered by status and category, in SKU order."""
    loader = selectinload(Garment.images)
    if with_image_data:
        loader = loader.options(undefer(GarmentImage.data))
    query = select(Garment).options(loader).order_by(Garment.sku)
    if status is not None:
        query = query.where(Garment.status == status)
    if category is not None:
        query = query.where(Garment.category == category)
    return session.scalars(query).all()


def _apply_image(
    garment: Garment, kind: ImageKind, encoded: EncodedImage, source: MaskSource | None
) -> bool:
    """Store ``encoded`` as the garment's ``kind`` image; return whether anything changed."""
    image = garment.image(kind)
    if image is None:
        image = GarmentImage(kind=kind)
        garment.images.append(image)
    elif image.sha256 == encoded.sha256 and image.source == source:
        return False
    image.source = source
    image.mime_type = encoded.mime_type
    image.width = encoded.width
    image.height = encoded.height
    image.byte_size = len(encoded.data)
    image.sha256 = encoded.sha256
    image.data = encoded.data
    return True


def _apply_fields(garment: Garment, fields: GarmentFields) -> bool:
    changed = False
    for name in ("name", "category", "brand", "colour"):
        value = getattr(fields, name)
        if getattr(garment, name) != value:
            setattr(garment, name, value)
            changed = True
    if list(garment.tags or []) != list(fields.tags):
        garment.tags = list(fields.tags)
        changed = True
    return changed


def add_garment(
    session: Session, fields: GarmentFields, images: GarmentImages, *, activate: bool = False
) -> Garment:
    """Add a new garment; raise GarmentExistsError if the SKU is taken."""
    if find_garment(session, fields.sku) is not None:
        raise GarmentExistsError(
            f"a garment with SKU `{fields.sku}` already exists; use `catalog update`"
        )
    garment, _ = save_garment(session, fields, images, activate=activate)
    return garment


def save_garment(
    session: Session, fields: GarmentFields, images: GarmentImages, *, activate: bool = False
) -> tuple[Garment, SaveOutcome]:
    """Insert or update a garment so that it matches ``fields`` and ``images``.

    A new garment starts as a draft (active with ``activate``); an existing one keeps its
    status unless ``activate`` makes it active. Saving what is already stored changes
    nothing, the revision included.
    """
    garment = find_garment(session, fields.sku)
    if garment is None:
        garment = Garment(
            sku=fields.sku, status=Status.ACTIVE if activate else Status.DRAFT, tags=[]
        )
        _apply_fields(garment, fields)
        _apply_image(garment, ImageKind.PHOTO, images.photo, None)
        _apply_image(garment, ImageKind.MASK, images.mask, images.mask_source)
        session.add(garment)
        session.flush()
        return garment, SaveOutcome.ADDED
    changed = _apply_fields(garment, fields)
    changed |= _apply_image(garment, ImageKind.PHOTO, images.photo, None)
    changed |= _apply_image(garment, ImageKind.MASK, images.mask, images.mask_source)
    if activate and garment.status != Status.ACTIVE:
        garment.status = Status.ACTIVE
        changed = True
    if not changed:
        return garment, SaveOutcome.UNCHANGED
    _touch(garment)
    session.flush()
    return garment, SaveOutcome.UPDATED


def _touch(garment: Garment) -> None:
    # Also forces an UPDATE of the garment row, which is what bumps the revision when only
    # an image changed.
    garment.updated_at = utcnow()


def update_garment(
    session: Session,
    sku: str,
    *,
    fields: GarmentFields | None = None,
    images: GarmentImages | None = None,
) -> bool:
    """Change an existing garment's fields and/or images; return whether anything changed."""
    garment = get_garment(session, sku)
    changed = _apply_fields(garment, fields) if fields is not None else False
    if images is not None:
        changed |= _apply_image(garment, ImageKind.PHOTO, images.photo, None)
        changed |= _apply_image(garment, ImageKind.MASK, images.mask, images.mask_source)
    if changed:
        _touch(garment)
        session.flush()
    return changed


def set_status(session: Session, skus: Iterable[str], status: Status) -> list[Garment]:
    """Give every garment in ``skus`` the ``status``; all must exist (else nothing changes)."""
    garments = [get_garment(session, sku) for sku in skus]
    for garment in garments:
        if garment.status != status:
            garment.status = status
            _touch(garment)
    session.flush()
    return garments


def remove_garments(session: Session, skus: Iterable[str]) -> int:
    """Delete the garments in ``skus`` with their images; all must exist."""
    garments = [get_garment(session, sku) for sku in skus]
    for garment in garments:
        session.delete(garment)
    session.flush()
    return len(garments)


def _active(session: Session, sku: str) -> Garment:
    garment = session.scalars(
        select(Garment).where(Garment.sku == sku, Garment.status == Status.ACTIVE)
    ).one_or_none()
    if garment is None:
        raise GarmentNotFoundError(f"no active garment has SKU `{sku}`")
    return garment


def get_active_revision(session: Session, sku: str) -> int:
    """The revision of the active garment ``sku``: cheap, for checking a cache."""
    revision = session.scalar(
        select(Garment.revision).where(Garment.sku == sku, Garment.status == Status.ACTIVE)
    )
    if revision is None:
        raise GarmentNotFoundError(f"no active garment has SKU `{sku}`")
    return revision


def get_active_garment(session: Session, sku: str) -> GarmentAssets:
    """The active garment ``sku`` with its photo and mask bytes; GarmentNotFoundError if none."""
    garment = _active(session, sku)
    images = {
        image.kind: image
        for image in session.scalars(
            select(GarmentImage)
            .where(GarmentImage.garment_id == garment.id)
            .options(undefer(GarmentImage.data))
        )
    }
    photo, mask = images[ImageKind.PHOTO], images[ImageKind.MASK]
    return GarmentAssets(
        sku=garment.sku,
        name=garment.name,
        category=garment.category,
        revision=garment.revision,
        image=photo.data,
        image_mime_type=photo.mime_type,
        mask=mask.data,
        mask_mime_type=mask.mime_type,
    )


def _encode_token(sku: str) -> str:
    return base64.urlsafe_b64encode(sku.encode()).decode().rstrip("=")


def _decode_token(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidInputError(f"page token `{token}` is not one this service issued") from None


def list_active_garments(
    session: Session, *, page_size: int = 100, page_token: str | None = None
) -> GarmentPage:
    """One page of active garments in SKU order, from ``page_token`` (None: the first page).

    Paging is by key, so garments added or removed between calls never make a page skip
    or repeat an unchanged garment.
    """
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise InvalidInputError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, not {page_size}")
    query = select(Garment).where(Garment.status == Status.ACTIVE)
    if page_token:
        query = query.where(Garment.sku > _decode_token(page_token))
    rows = session.scalars(query.order_by(Garment.sku).limit(page_size + 1)).all()
    items = [
        GarmentSummary(g.sku, g.name, g.category, g.brand, g.colour, g.revision)
        for g in rows[:page_size]
    ]
    next_token = _encode_token(rows[page_size - 1].sku) if len(rows) > page_size else None
    return GarmentPage(items, next_token)
