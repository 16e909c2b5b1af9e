"""A/B experiments: experiments and arms, exposures, purchase and return events, try-ons.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ID = sa.String(length=128)


def _enum(name: str, *values: str) -> sa.Enum:
    # Frozen copies of the table enums: a migration must not change when the tables do.
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=16)


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("seed", sa.String(length=64), nullable=False),
        sa.Column("hash_version", sa.Integer(), nullable=False),
        sa.Column("coverage", sa.Float(), nullable=False),
        sa.Column(
            "status", _enum("experiment_status", "draft", "running", "stopped"), nullable=False
        ),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("stopped_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiments")),
        sa.UniqueConstraint("key", name=op.f("uq_experiments_key")),
    )
    op.create_index(op.f("ix_experiments_status"), "experiments", ["status"])
    op.create_table(
        "experiment_arms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        _fk("experiment_arms", "experiment_id", "experiments"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiment_arms")),
        sa.UniqueConstraint("experiment_id", "name", name="uq_experiment_arms_name"),
        sa.UniqueConstraint("experiment_id", "position", name="uq_experiment_arms_position"),
    )
    op.create_table(
        "exposures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("arm_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", ID, nullable=False),
        sa.Column("bucket", sa.Float(), nullable=False),
        sa.Column("first_seen", sa.DateTime(), nullable=False),
        _fk("exposures", "experiment_id", "experiments"),
        _fk("exposures", "arm_id", "experiment_arms"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exposures")),
        sa.UniqueConstraint("experiment_id", "unit_id", name="uq_exposures_unit"),
    )
    op.create_index(op.f("ix_exposures_arm_id"), "exposures", ["arm_id"])
    op.create_table(
        "experiment_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("event_id", ID, nullable=False),
        sa.Column("kind", _enum("event_kind", "purchase", "return"), nullable=False),
        sa.Column("unit_id", ID, nullable=False),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        _fk("experiment_events", "experiment_id", "experiments"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiment_events")),
        sa.UniqueConstraint("experiment_id", "event_id", name="uq_experiment_events_event_id"),
    )
    op.create_table(
        "purchases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("event_row_id", sa.Integer(), nullable=False),
        sa.Column("order_id", ID, nullable=False),
        sa.Column("unit_id", ID, nullable=False),
        sa.Column("purchased_at", sa.DateTime(), nullable=False),
        _fk("purchases", "experiment_id", "experiments"),
        _fk("purchases", "event_row_id", "experiment_events"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_purchases")),
        sa.UniqueConstraint("event_row_id", name=op.f("uq_purchases_event_row_id")),
        sa.UniqueConstraint("experiment_id", "order_id", name="uq_purchases_order"),
    )
    op.create_index("ix_purchases_experiment_unit", "purchases", ["experiment_id", "unit_id"])
    op.create_table(
        "purchase_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("purchase_id", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price", sa.Float(), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_purchase_items_quantity_positive")),
        sa.CheckConstraint(
            "unit_price >= 0", name=op.f("ck_purchase_items_unit_price_not_negative")
        ),
        _fk("purchase_items", "purchase_id", "purchases"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_purchase_items")),
        sa.UniqueConstraint("purchase_id", "sku", name="uq_purchase_items_sku"),
    )
    op.create_table(
        "returns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_row_id", sa.Integer(), nullable=False),
        sa.Column("purchase_id", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("returned_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_returns_quantity_positive")),
        _fk("returns", "event_row_id", "experiment_events"),
        _fk("returns", "purchase_id", "purchases"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_returns")),
        sa.UniqueConstraint("event_row_id", name=op.f("uq_returns_event_row_id")),
    )
    op.create_index(op.f("ix_returns_purchase_id"), "returns", ["purchase_id"])
    op.create_table(
        "tryons",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tryon_id", ID, nullable=False),
        sa.Column("unit_id", ID, nullable=True),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tryons")),
        sa.UniqueConstraint("tryon_id", name=op.f("uq_tryons_tryon_id")),
    )
    op.create_index(op.f("ix_tryons_unit_id"), "tryons", ["unit_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_tryons_unit_id"), table_name="tryons")
    op.drop_table("tryons")
    op.drop_index(op.f("ix_returns_purchase_id"), table_name="returns")
    op.drop_table("returns")
    op.drop_table("purchase_items")
    op.drop_index("ix_purchases_experiment_unit", table_name="purchases")
    op.drop_table("purchases")
    op.drop_table("experiment_events")
    op.drop_index(op.f("ix_exposures_arm_id"), table_name="exposures")
    op.drop_table("exposures")
    op.drop_table("experiment_arms")
    op.drop_index(op.f("ix_experiments_status"), table_name="experiments")
    op.drop_table("experiments")
