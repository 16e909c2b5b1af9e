"""Commands for demos and measurements: load-samples and the benchmarks."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer

from catalog.bench import benchmark_import, benchmark_masks
from catalog.cli.common import (
    DbUrlOption,
    JsonOption,
    console,
    fail,
    open_catalog,
    print_json,
)
from catalog.csvfiles import parse_import_file
from catalog.importer import default_jobs, run_import
from catalog.samples import write_samples
from tryon.errors import TryOnError

bench_app = typer.Typer(help="Measure mask quality and import speed.", no_args_is_help=True)
CountOption = Annotated[int, typer.Option("--n", min=1, help="How many garments.")]
SeedOption = Annotated[int, typer.Option("--seed", help="Generator seed.")]


def load_samples(
    n: CountOption = 20,
    seed: SeedOption = 0,
    draft: Annotated[bool, typer.Option("--draft", help="Leave them as drafts.")] = False,
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Load synthetic sample garments (SKUs SAMPLE-<seed>-<n>), active unless --draft."""
    with open_catalog(db_url) as sessions, tempfile.TemporaryDirectory() as tmp:
        sheet = write_samples(Path(tmp), n, seed)
        report = run_import(
            sessions,
            parse_import_file(sheet.read_bytes()),
            sheet.parent,
            activate=not draft,
            jobs=default_jobs(),
        )
    if as_json:
        print_json(report.counts)
    else:
        counts = report.counts
        console.print(
            f"samples: {counts['added']} added, {counts['updated']} updated, "
            f"{counts['unchanged']} unchanged, {counts['failed']} failed"
        )
    if report.failed:
        raise typer.Exit(1)


@bench_app.command("masks")
def bench_masks(n: CountOption = 200, seed: SeedOption = 0, as_json: JsonOption = False) -> None:
    """Mean IoU of extracted masks against the generator's exact masks (target 0.97)."""
    try:
        result = benchmark_masks(n, seed)
    except TryOnError as error:
        fail(str(error))
    if as_json:
        print_json(vars(result))
    else:
        console.print(
            f"mask IoU over {result.count} synthetic garments: mean {result.mean_iou:.4f}, "
            f"worst {result.worst_iou:.4f}; {result.milliseconds_per_mask:.1f} ms per mask"
        )


@bench_app.command("import")
def bench_import(
    n: CountOption = 1000,
    seed: SeedOption = 0,
    postgres_url: Annotated[
        str | None,
        typer.Option("--postgres-url", help="Also measure this PostgreSQL (in a scratch schema)."),
    ] = None,
    jobs: Annotated[
        int | None, typer.Option("--jobs", "-j", min=1, help="Processes preparing images.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Garments per second importing generated garments, masks extracted (target 50/s).

    Always measures a new SQLite file; with --postgres-url also PostgreSQL.
    """
    results = []
    try:
        for url in [None] + ([postgres_url] if postgres_url else []):
            results.append(benchmark_import(url, n, seed, jobs or default_jobs()))
    except TryOnError as error:
        fail(str(error))
    if as_json:
        print_json([{**vars(r), "per_second": r.per_second} for r in results])
        return
    for r in results:
        console.print(
            f"{r.database}: {r.count} garments in {r.seconds:.1f} s = "
            f"{r.per_second:.1f} garments/s ({r.failed} failed)"
        )
