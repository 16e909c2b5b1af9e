"""The catalog's tables as typed SQLAlchemy models: garments and their images."""

from __future__ import annotations

import enum
from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    DateTime,
    Enum,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Category(str, enum.Enum):
    """What kind of garment it is; decides which body region try-on replaces."""

    TOP = "top"
    DRESS = "dress"
    TROUSERS = "trousers"
    SKIRT = "skirt"
    OUTERWEAR = "outerwear"
    JUMPSUIT = "jumpsuit"


class Status(str, enum.Enum):
    """Where a garment is in its life: only ``active`` garments are served."""

    DRAFT = "draft"
    ACTIVE = "active"
    ARCHIVED = "archived"


class ImageKind(str, enum.Enum):
    """Which of a garment's two images a row holds."""

    PHOTO = "photo"
    MASK = "mask"


class MaskSource(str, enum.Enum):
    """Where a garment mask came from."""

    EXTRACTED = "extracted"
    SUPPLIED = "supplied"
    ALPHA = "alpha"


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as naive UTC and read back timezone-aware, the same on every DB."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=timezone.utc)


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(timezone.utc)


def enum_column(cls: type[enum.Enum], name: str) -> Enum:
    """The column type of a string enum: VARCHAR plus a CHECK constraint (portable across
    SQLite and PostgreSQL, and adding a value needs no type migration)."""
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [m.value for m in members],
    )


class Base(DeclarativeBase):
    """Declarative base with stable constraint names, so migrations can refer to them."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Garment(Base):
    """One sellable garment; ``revision`` grows with every change to it or its images."""

    __tablename__ = "garments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    brand: Mapped[str | None] = mapped_column(String(100))
    category: Mapped[Category] = mapped_column(enum_column(Category, "category"), index=True)
    colour: Mapped[str | None] = mapped_column(String(50))
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[Status] = mapped_column(enum_column(Status, "status"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revision: Mapped[int] = mapped_column(Integer)

    images: Mapped[list[GarmentImage]] = relationship(
        back_populates="garment", cascade="all, delete-orphan", passive_deletes=True
    )

    # SQLAlchemy bumps the revision on every UPDATE of the row and refuses a write based
    # on a stale read, so two merchandisers cannot silently overwrite each other.
    __mapper_args__ = {"version_id_col": revision}

    def image(self, kind: ImageKind) -> GarmentImage | None:
        """This garment's image of ``kind``, or ``None``."""
        return next((i for i in self.images if i.kind == kind), None)


class GarmentImage(Base):
    """A garment's product photo or garment mask, as encoded bytes with their checksum."""

    __tablename__ = "garment_images"
    __table_args__ = (UniqueConstraint("garment_id", "kind", name="uq_garment_images_kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    garment_id: Mapped[int] = mapped_column(ForeignKey("garments.id", ondelete="CASCADE"))
    kind: Mapped[ImageKind] = mapped_column(enum_column(ImageKind, "image_kind"))
    source: Mapped[MaskSource | None] = mapped_column(enum_column(MaskSource, "mask_source"))
    mime_type: Mapped[str] = mapped_column(String(32))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    byte_size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    # Deferred: listing garments must not drag megabytes of image bytes along.
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)

    garment: Mapped[Garment] = relationship(back_populates="images")
