"""The PostgreSQL server the tests use, and throw-away schemas on it.

Tests that need PostgreSQL run in a schema of their own that is dropped afterwards, so
they never see each other's rows or the tables of other suites sharing the database.
Without a reachable server they are skipped with a message, except under CI=true, where
that is a failure. (A module at the tests' root, importable from every folder: several
folders have a conftest.py, and `from conftest import ...` would find whichever came first.)
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import NoReturn

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from catalog.database import create_catalog_engine, url_with_schema

POSTGRES_URL = os.environ.get(
    "TRYON_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
)


def unreachable(reason: object) -> NoReturn:
    """Skip the test (fail it under CI=true): the PostgreSQL server cannot be used."""
    message = f"PostgreSQL at {POSTGRES_URL} is unreachable: {reason}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def postgres_schema_url(prefix: str) -> Iterator[str]:
    """Yields the URL of a new schema `<prefix>_<random>`, dropping it when resumed."""
    admin = create_catalog_engine(POSTGRES_URL)
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as error:
        admin.dispose()
        unreachable(error.orig)
    try:
        yield url_with_schema(POSTGRES_URL, schema)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
