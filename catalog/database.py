"""Connecting to the catalog database and keeping its schema current with Alembic."""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from catalog.errors import SchemaOutOfDateError

DATABASE_URL_ENV = "TRYON_DATABASE_URL"
DEFAULT_SQLITE_FILE = "tryon.db"
# Our own version table, so the A/B experiment store can run its own Alembic history in
# the same database without the two overwriting each other's revision.
VERSION_TABLE = "catalog_alembic_version"
MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def resolve_database_url(flag: str | None = None) -> str:
    """The database URL: ``--db-url``, else ``TRYON_DATABASE_URL``, else ./tryon.db (SQLite)."""
    if flag:
        return flag
    from_env = os.environ.get(DATABASE_URL_ENV)
    if from_env:
        return from_env
    return f"sqlite:///{Path.cwd() / DEFAULT_SQLITE_FILE}"


def _tune_sqlite(dbapi_connection, _record) -> None:  # noqa: ANN001 (DB-API objects)
    # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin (see
    # _begin_sqlite): otherwise SAVEPOINTs, which imports use per row, misbehave.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # Foreign keys so deleting a garment deletes its images; WAL so the service can read
    # while an import writes; a busy timeout instead of "database is locked" at once.
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


# Execution option of a transaction that will write: on SQLite it begins IMMEDIATE, taking
# the write lock first. A deferred one that reads and then writes cannot wait its turn
# behind another writer (SQLite answers "database is locked" at once rather than risk a
# deadlock); an IMMEDIATE one waits up to busy_timeout. Reads stay deferred, so they never
# queue behind a writer. Ignored on PostgreSQL. Use:
#     session.connection(execution_options={SQLITE_WRITE: True})  # first thing in begin()
SQLITE_WRITE = "sqlite_write"


def _begin_sqlite(connection) -> None:  # noqa: ANN001
    writes = connection.get_execution_options().get(SQLITE_WRITE, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


def create_catalog_engine(url: str) -> Engine:
    """An engine for ``url``, with the SQLite settings the catalog relies on."""
    parsed = make_url(url)
    # hide_parameters: a failed statement's message (which logs and tracebacks carry)
    # names no values, so no shopper's unit id or store data reaches the logs.
    engine = create_engine(
        parsed, pool_pre_ping=parsed.get_backend_name() != "sqlite", hide_parameters=True
    )
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _tune_sqlite)
        event.listen(engine, "begin", _begin_sqlite)
    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """The process's one session factory for ``engine``; sessions never autoflush blobs early."""
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(engine: Engine) -> Config:
    """An Alembic configuration for the migrations shipped inside this package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def head_revision() -> str:
    """The newest migration this code knows about."""
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    head = script.get_current_head()
    assert head is not None, "the catalog ships at least one migration"
    return head


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at, or ``None`` when it has no catalog schema."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run the migrations up to ``revision`` (default: the newest)."""
    command.upgrade(alembic_config(engine), revision)


def check_schema(engine: Engine) -> None:
    """Raise :class:`SchemaOutOfDateError` unless the database is at this code's revision."""
    current = current_revision(engine)
    head = head_revision()
    if current == head:
        return
    where = engine.url.render_as_string(hide_password=True)
    if current is None:
        raise SchemaOutOfDateError(
            f"the database {where} has no catalog schema yet; run `catalog db upgrade`"
        )
    known = {rev.revision for rev in ScriptDirectory(str(MIGRATIONS_DIR)).walk_revisions()}
    if current not in known:
        raise SchemaOutOfDateError(
            f"the database {where} is at schema revision {current}, which this version of "
            "the catalog does not know; upgrade the catalog software"
        )
    raise SchemaOutOfDateError(
        f"the database {where} is at schema revision {current} but this catalog needs "
        f"{head}; run `catalog db upgrade`"
    )


def url_with_schema(url: str, schema: str) -> str:
    """A PostgreSQL ``url`` whose connections put ``schema`` first on the search path.

    Keeps a scratch catalog (tests, benchmarks) in its own schema of a shared database.
    """
    parsed = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    return parsed.render_as_string(hide_password=False)
