"""The databases the experiments tests run on: SQLite, and a schema of its own on the
PostgreSQL server (skipped without one, a failure under CI=true).

A module of its own, not conftest.py: several test folders have a conftest.py, and
`from conftest import ...` would find whichever was imported first.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from catalog.database import create_catalog_engine, url_with_schema

POSTGRES_URL = os.environ.get(
    "TRYON_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
)


def postgres_schema_url() -> Iterator[str]:
    """Yields the URL of a new PostgreSQL schema, dropping it when resumed."""
    admin = create_catalog_engine(POSTGRES_URL)
    schema = f"experiments_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as error:
        admin.dispose()
        message = f"PostgreSQL at {POSTGRES_URL} is unreachable: {error.orig}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield url_with_schema(POSTGRES_URL, schema)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
