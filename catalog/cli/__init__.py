"""The ``catalog`` command: merchandisers onboard and manage garments with it.

Commands are grouped in modules by what they work on; this module only assembles them.
"""

from __future__ import annotations

import typer

from catalog.cli import checks, db, demo, garments, transfer

app = typer.Typer(
    name="catalog",
    help="Onboard and manage the garments the try-on service serves.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(db.app, name="db")
app.command()(garments.add)
app.command("import")(transfer.import_command)
app.command("list")(garments.list_command)
app.command()(garments.show)
app.command()(garments.update)
app.command()(garments.activate)
app.command()(garments.archive)
app.command()(garments.remove)
app.command("export")(transfer.export_command)
app.command()(checks.validate)
app.command()(checks.preview)
app.command("load-samples")(demo.load_samples)
app.add_typer(demo.bench_app, name="bench")


def main() -> None:
    """Entry point of the ``catalog`` console script."""
    app()
