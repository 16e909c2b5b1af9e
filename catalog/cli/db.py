"""``catalog db`` and ``tryon db``: create and migrate the database schema.

One Alembic history covers the garment catalog and the A/B experiments, so either
command brings a database to the full schema.
"""

from __future__ import annotations

import typer

from catalog.cli.common import DbUrlOption, JsonOption, console, open_catalog, print_json
from catalog.database import current_revision, head_revision, upgrade

NEEDS_UPGRADE = "needs `tryon db upgrade` (or `catalog db upgrade`)"

app = typer.Typer(
    help="Create and migrate the database schema (garment catalog and A/B experiments).",
    no_args_is_help=True,
)


@app.command("upgrade")
def upgrade_command(db_url: DbUrlOption = None) -> None:
    """Create the tables or bring them up to date (safe to run any time)."""
    with open_catalog(db_url, check=False) as sessions:
        engine = sessions.kw["bind"]
        before = current_revision(engine)
        upgrade(engine)
        after = current_revision(engine)
    if before == after:
        console.print(f"schema already at revision {after} (newest)")
    else:
        console.print(f"schema upgraded from {before or 'nothing'} to revision {after} (newest)")


@app.command("status")
def status_command(db_url: DbUrlOption = None, as_json: JsonOption = False) -> None:
    """Show the database's schema revision and whether it needs `db upgrade`."""
    with open_catalog(db_url, check=False) as sessions:
        current = current_revision(sessions.kw["bind"])
    head = head_revision()
    if as_json:
        print_json({"current": current, "head": head, "up_to_date": current == head})
        return
    state = "up to date" if current == head else NEEDS_UPGRADE
    console.print(f"schema revision {current or 'none'}, newest {head}: {state}")
