"""The `tryon` command: data, training, evaluation, the try-on service and its benchmarks.

Commands are grouped in modules by what they work on; this module only assembles them
and turns product errors into one line and exit status 1 (usage errors exit 2).
"""

from __future__ import annotations

import sys

import typer

from catalog.cli import db as database
from tryon.cli import ab, bench, data, evaluation, k8s, keys, service, train, verify, weights
from tryon.cli.common import console
from tryon.errors import TryOnError

app = typer.Typer(
    help="Virtual try-on: synthetic data, training, evaluation and the try-on service.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command()(data.synth)
app.command()(data.split)
app.add_typer(train.app, name="train")
app.command("eval")(evaluation.evaluate_command)
app.command()(weights.pack)
app.command("export-parser")(weights.export_parser)
app.command()(evaluation.curves)
app.command()(service.serve)
app.command("try-on")(service.try_on_command)
app.command()(service.demo)
app.command()(bench.bench)
app.command()(verify.verify)
app.add_typer(database.app, name="db")
app.add_typer(k8s.app, name="k8s")
app.add_typer(ab.app, name="ab")
app.add_typer(keys.app, name="keys")

PRODUCT_ERROR = 1


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the app; a product error is one clear line and exit 1."""
    try:
        app(args=argv)
    except TryOnError as error:
        console.print(f"[red]error:[/red] {error}")
        sys.exit(PRODUCT_ERROR)
