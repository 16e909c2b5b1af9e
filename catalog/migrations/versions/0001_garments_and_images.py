"""Garments and their images (product photo and garment mask).

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _enum(name: str, *values: str) -> sa.Enum:
    # Frozen copies of the model enums: a migration must not change when the models do.
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=16)


def upgrade() -> None:
    op.create_table(
        "garments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("brand", sa.String(length=100), nullable=True),
        sa.Column(
            "category",
            _enum("category", "top", "dress", "trousers", "skirt", "outerwear", "jumpsuit"),
            nullable=False,
        ),
        sa.Column("colour", sa.String(length=50), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("status", _enum("status", "draft", "active", "archived"), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_garments")),
        sa.UniqueConstraint("sku", name=op.f("uq_garments_sku")),
    )
    op.create_index(op.f("ix_garments_category"), "garments", ["category"])
    op.create_index(op.f("ix_garments_status"), "garments", ["status"])
    op.create_table(
        "garment_images",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("garment_id", sa.Integer(), nullable=False),
        sa.Column("kind", _enum("image_kind", "photo", "mask"), nullable=False),
        sa.Column("source", _enum("mask_source", "extracted", "supplied", "alpha"), nullable=True),
        sa.Column("mime_type", sa.String(length=32), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("byte_size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["garment_id"],
            ["garments.id"],
            name=op.f("fk_garment_images_garment_id_garments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_garment_images")),
        sa.UniqueConstraint("garment_id", "kind", name=op.f("uq_garment_images_kind")),
    )


def downgrade() -> None:
    op.drop_table("garment_images")
    op.drop_index(op.f("ix_garments_status"), table_name="garments")
    op.drop_index(op.f("ix_garments_category"), table_name="garments")
    op.drop_table("garments")
