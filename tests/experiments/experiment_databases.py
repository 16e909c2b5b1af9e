"""The databases the experiments tests run on: SQLite, and a schema of its own on the
PostgreSQL server (`postgres_schemas`).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from postgres_schemas import postgres_schema_url as _schema_url


def postgres_schema_url() -> Iterator[str]:
    """Yields the URL of a new PostgreSQL schema for an experiments test, dropping it after."""
    yield from _schema_url("experiments_test")


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
