"""Fixtures for the catalog tests: a fresh catalog database on SQLite and on PostgreSQL.

PostgreSQL tests run in a schema of their own that is dropped afterwards, so they never
see each other's rows or the tables of other suites sharing the database. Without a
reachable server they are skipped, except under CI=true, where that is a failure.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from postgres_schemas import postgres_schema_url
from sqlalchemy.orm import Session, sessionmaker

from catalog.database import create_catalog_engine, make_sessionmaker, upgrade


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_db_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # noqa: ANN001
    """The URL of an empty database (no catalog schema), on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.db'}"
    else:
        yield from postgres_schema_url("catalog_test")


@pytest.fixture
def db_url(empty_db_url: str) -> str:
    """The URL of a database migrated to the newest catalog schema."""
    engine = create_catalog_engine(empty_db_url)
    upgrade(engine)
    engine.dispose()
    return empty_db_url


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    """A session factory on the migrated database."""
    engine = create_catalog_engine(db_url)
    yield make_sessionmaker(engine)
    engine.dispose()
