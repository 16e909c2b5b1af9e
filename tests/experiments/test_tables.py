"""The experiments' migration: one history with the catalog, building what the tables say."""

from __future__ import annotations

import subprocess
import sys

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

from catalog.database import VERSION_TABLE, alembic_config, current_revision, head_revision
from catalog.models import Base
from tryon.experiments import tables

EXPERIMENT_TABLES = {
    "experiments",
    "experiment_arms",
    "exposures",
    "experiment_events",
    "purchases",
    "purchase_items",
    "returns",
    "tryons",
}


def test_upgrade_builds_exactly_the_catalog_and_experiment_tables(fresh_engine: Engine) -> None:
    assert tables.Experiment.__table__.metadata is Base.metadata
    assert current_revision(fresh_engine) == head_revision() == "0002"
    with fresh_engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"include_object": lambda obj, name, *_: name != VERSION_TABLE}
        )
        assert compare_metadata(context, Base.metadata) == []
        assert EXPERIMENT_TABLES | {"garments"} <= set(inspect(connection).get_table_names())


def test_downgrade_to_the_catalog_alone_keeps_garments(fresh_engine: Engine) -> None:
    command.downgrade(alembic_config(fresh_engine), "0001")
    names = set(inspect(fresh_engine).get_table_names())
    assert "garments" in names
    assert not names & EXPERIMENT_TABLES


def test_migrations_run_without_torch(tmp_path) -> None:  # noqa: ANN001
    # `catalog db upgrade` must work on a machine with only the catalog's dependencies.
    script = f"""
import sys
sys.modules["torch"] = None  # any import of torch now fails
from catalog.database import create_catalog_engine, upgrade, current_revision
engine = create_catalog_engine("sqlite:///{tmp_path / "no_torch.db"}")
upgrade(engine)
print(current_revision(engine))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0002"
