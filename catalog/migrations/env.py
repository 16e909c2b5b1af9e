"""Alembic environment: runs the database's migrations on the engine the caller passes in.

One history builds the whole database: the catalog's tables and the experiments' tables
(:mod:`tryon.experiments.tables`, declared on the catalog's ``Base``). Importing that module
here registers them on ``Base.metadata``, so the target metadata describes every table the
history creates; the catalog's own modules still never import the experiments.
"""

from __future__ import annotations

from alembic import context

from catalog.database import VERSION_TABLE
from catalog.models import Base
from tryon.experiments import tables as _experiment_tables  # noqa: F401 (registers tables)

engine = context.config.attributes["engine"]

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        render_as_batch=True,  # SQLite can only alter tables by copying them
    )
    context.run_migrations()
