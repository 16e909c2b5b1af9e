"""Alembic environment: runs the catalog's migrations on the engine the caller passes in."""

from __future__ import annotations

from alembic import context

from catalog.database import VERSION_TABLE
from catalog.models import Base

engine = context.config.attributes["engine"]

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        render_as_batch=True,  # SQLite can only alter tables by copying them
    )
    context.run_migrations()
