"""Fixtures for the experiments tests: a migrated database on SQLite and on PostgreSQL.

PostgreSQL tests run in a schema of their own that is dropped afterwards, so they never
see each other's rows or the tables of other suites sharing the database. Without a
reachable server they are skipped, except under CI=true, where that is a failure.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from experiment_databases import BACKENDS, postgres_schema_url  # noqa: F401
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from catalog.database import create_catalog_engine, make_sessionmaker, upgrade
from catalog.models import Base
from tryon.experiments import tables as _tables  # noqa: F401 (registers the tables)


@pytest.fixture(params=BACKENDS)
def empty_db_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # noqa: ANN001
    """The URL of an empty database, on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'experiments.db'}"
    else:
        yield from postgres_schema_url()


@pytest.fixture
def fresh_engine(empty_db_url: str) -> Iterator[Engine]:
    """An engine on a new database migrated to the newest schema, for tests that alter it."""
    engine = create_catalog_engine(empty_db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def _migrated_engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    # Migrating takes a good part of a second; tests share one database per backend and
    # start from empty tables instead.
    if request.param == "sqlite":
        urls: Iterator[str] = iter([f"sqlite:///{tmp_path_factory.mktemp('db') / 'shared.db'}"])
    else:
        urls = postgres_schema_url()
    url = next(urls)
    engine = create_catalog_engine(url)
    upgrade(engine)
    yield engine
    engine.dispose()
    next(urls, None)  # drops the PostgreSQL schema


@pytest.fixture
def engine(_migrated_engine: Engine) -> Engine:
    """An engine on a migrated database (catalog and experiments) whose tables are empty."""
    with _migrated_engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())
    return _migrated_engine


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    """A session factory on the emptied database."""
    return make_sessionmaker(engine)
