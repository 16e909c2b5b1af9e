"""The experiments' tables: experiments and arms, exposures, purchases, returns, try-ons.

They are declared on the catalog's declarative ``Base``, so the one database has one
``MetaData`` (same naming conventions) and one Alembic history
(``catalog/migrations/versions/0002_experiments.py`` creates them). The arrow points from
experiments to the catalog: this module imports ``catalog.models``; the catalog's code
never imports the experiments, and only the migration environment
(``catalog/migrations/env.py``), which describes the whole database, imports this module
to register these tables on the shared metadata.

Events are scoped to an experiment: every purchase and return arrives with a
client-supplied ``event_id``, unique within its experiment, recorded once in
``experiment_events``; ``purchases`` and ``returns`` hold what each event says.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from catalog.models import Base, UTCDateTime, enum_column, utcnow

KEY_LENGTH = 64
ID_LENGTH = 128
SKU_LENGTH = 64


class ExperimentStatus(str, enum.Enum):
    """Where an experiment is in its life: only ``running`` ones assign and take purchases."""

    DRAFT = "draft"
    RUNNING = "running"
    STOPPED = "stopped"


class EventKind(str, enum.Enum):
    """What a recorded event is."""

    PURCHASE = "purchase"
    RETURN = "return"


class Experiment(Base):
    """One A/B test: its arms, how units are hashed into them, and when it ran."""

    __tablename__ = "experiments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(KEY_LENGTH), unique=True)
    seed: Mapped[str] = mapped_column(String(KEY_LENGTH))
    hash_version: Mapped[int] = mapped_column(Integer)
    coverage: Mapped[float] = mapped_column(Float)
    status: Mapped[ExperimentStatus] = mapped_column(
        enum_column(ExperimentStatus, "experiment_status"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    arms: Mapped[list[ExperimentArm]] = relationship(
        back_populates="experiment",
        order_by="ExperimentArm.position",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class ExperimentArm(Base):
    """One arm of an experiment; ``position`` is GrowthBook's variation index (0 = control)."""

    __tablename__ = "experiment_arms"
    __table_args__ = (
        UniqueConstraint("experiment_id", "position", name="uq_experiment_arms_position"),
        UniqueConstraint("experiment_id", "name", name="uq_experiment_arms_name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(KEY_LENGTH))
    weight: Mapped[float] = mapped_column(Float)

    experiment: Mapped[Experiment] = relationship(back_populates="arms")


class Exposure(Base):
    """A unit's first exposure to an experiment, and the arm it was put in for good."""

    __tablename__ = "exposures"
    __table_args__ = (UniqueConstraint("experiment_id", "unit_id", name="uq_exposures_unit"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    arm_id: Mapped[int] = mapped_column(
        ForeignKey("experiment_arms.id", ondelete="CASCADE"), index=True
    )
    unit_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    bucket: Mapped[float] = mapped_column(Float)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)


class ExperimentEvent(Base):
    """One client event (purchase or return) of an experiment, stored once per ``event_id``."""

    __tablename__ = "experiment_events"
    __table_args__ = (
        UniqueConstraint("experiment_id", "event_id", name="uq_experiment_events_event_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    kind: Mapped[EventKind] = mapped_column(enum_column(EventKind, "event_kind"))
    unit_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Purchase(Base):
    """An order a unit placed during an experiment; its lines are :class:`PurchaseItem` rows."""

    __tablename__ = "purchases"
    __table_args__ = (
        UniqueConstraint("experiment_id", "order_id", name="uq_purchases_order"),
        Index("ix_purchases_experiment_unit", "experiment_id", "unit_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    event_row_id: Mapped[int] = mapped_column(
        ForeignKey("experiment_events.id", ondelete="CASCADE"), unique=True
    )
    order_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    unit_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    purchased_at: Mapped[datetime] = mapped_column(UTCDateTime)

    items: Mapped[list[PurchaseItem]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True
    )


class PurchaseItem(Base):
    """One line of an order: a SKU, how many were bought and at what unit price."""

    __tablename__ = "purchase_items"
    __table_args__ = (
        UniqueConstraint("purchase_id", "sku", name="uq_purchase_items_sku"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_price >= 0", name="unit_price_not_negative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    purchase_id: Mapped[int] = mapped_column(ForeignKey("purchases.id", ondelete="CASCADE"))
    sku: Mapped[str] = mapped_column(String(SKU_LENGTH))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[float] = mapped_column(Float)


class Return(Base):
    """Items of one SKU of an order sent back."""

    __tablename__ = "returns"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_row_id: Mapped[int] = mapped_column(
        ForeignKey("experiment_events.id", ondelete="CASCADE"), unique=True
    )
    purchase_id: Mapped[int] = mapped_column(
        ForeignKey("purchases.id", ondelete="CASCADE"), index=True
    )
    sku: Mapped[str] = mapped_column(String(SKU_LENGTH))
    quantity: Mapped[int] = mapped_column(Integer)
    returned_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TryOn(Base):
    """One try-on served, so that reports count try-ons per arm and per SKU."""

    __tablename__ = "tryons"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tryon_id: Mapped[str] = mapped_column(String(ID_LENGTH), unique=True)
    unit_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), index=True)
    sku: Mapped[str] = mapped_column(String(SKU_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
