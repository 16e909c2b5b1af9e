"""Schema management: migrations build what the models describe, stale schemas are refused."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from catalog.database import (
    VERSION_TABLE,
    alembic_config,
    check_schema,
    create_catalog_engine,
    current_revision,
    head_revision,
    upgrade,
)
from catalog.errors import SchemaOutOfDateError
from catalog.models import Base


def test_empty_database_is_refused_until_upgraded(empty_db_url: str) -> None:
    engine = create_catalog_engine(empty_db_url)
    with pytest.raises(SchemaOutOfDateError, match="run `catalog db upgrade`"):
        check_schema(engine)
    upgrade(engine)
    check_schema(engine)
    assert current_revision(engine) == head_revision()
    upgrade(engine)  # a second upgrade is harmless
    engine.dispose()


def test_migrations_build_exactly_the_models(db_url: str) -> None:
    engine = create_catalog_engine(db_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={"include_object": lambda obj, name, *_: name != VERSION_TABLE},
        )
        assert compare_metadata(context, Base.metadata) == []
        # Our own version table leaves `alembic_version` free for other parts' migrations.
        assert VERSION_TABLE in inspect(connection).get_table_names()
        assert "alembic_version" not in inspect(connection).get_table_names()
    engine.dispose()


def test_older_schema_is_refused(db_url: str) -> None:
    engine = create_catalog_engine(db_url)
    with engine.begin() as connection:
        connection.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = 'future1'"))
    with pytest.raises(SchemaOutOfDateError, match="does not know"):
        check_schema(engine)
    engine.dispose()


def test_downgrade_then_check_says_upgrade(db_url: str) -> None:
    engine = create_catalog_engine(db_url)
    command.downgrade(alembic_config(engine), "base")
    with pytest.raises(SchemaOutOfDateError, match="no catalog schema"):
        check_schema(engine)
    assert "garments" not in inspect(engine).get_table_names()
    engine.dispose()
