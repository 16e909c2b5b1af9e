"""`tryon ab`: A/B tests on return rates — define, run, import events, report, plan, simulate.

Every command works on the database at `--db-url` (default `TRYON_DATABASE_URL`, else the
SQLite file ./tryon.db), the same one the catalog and the server use; `tryon db upgrade`
creates its tables.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from sqlalchemy.exc import OperationalError

from catalog.cli.common import DbUrlOption, fail, open_catalog
from tryon.cli.common import JsonOption, OutputOption, console, emit_json

app = typer.Typer(
    help="A/B tests on return rates: shoppers split into arms, orders and returns recorded, "
    "a report on whether try-on lowers returns.",
    no_args_is_help=True,
)

KeyArgument = Annotated[str, typer.Argument(help="The experiment's key, e.g. tryon-2026-q1.")]


def parse_arms(text: str) -> list[tuple[str, float]]:
    """'control:50,tryon:50' -> [("control", 50.0), ("tryon", 50.0)]; a usage error otherwise."""
    arms = []
    for part in text.split(","):
        name, _, weight = part.partition(":")
        try:
            arms.append((name.strip(), float(weight) if weight else 1.0))
        except ValueError:
            raise typer.BadParameter(
                f"{part!r} is not NAME:WEIGHT; write e.g. control:50,tryon:50", param_hint="--arms"
            ) from None
    return arms


def _experiment_row(experiment: Any) -> dict[str, Any]:
    return {
        "key": experiment.key,
        "status": experiment.status.value,
        "arms": {arm.name: round(arm.weight, 6) for arm in experiment.arms},
        "coverage": experiment.coverage,
        "seed": experiment.seed,
        "started_at": experiment.started_at,
        "stopped_at": experiment.stopped_at,
    }


@app.command()
def create(
    key: KeyArgument,
    arms: Annotated[
        str,
        typer.Option(help="Arms and their weights, control first: NAME:WEIGHT,NAME:WEIGHT."),
    ] = "control:50,tryon:50",
    seed: Annotated[
        str | None, typer.Option(help="Hash seed (default: the key); GrowthBook's `seed`.")
    ] = None,
    coverage: Annotated[
        float, typer.Option(help="Share of shoppers in the experiment, in (0, 1].")
    ] = 1.0,
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Define a draft experiment; `tryon ab start KEY` starts assigning shoppers."""
    from tryon.experiments.store import create_experiment

    with open_catalog(db_url) as sessions, sessions.begin() as session:
        row = _experiment_row(create_experiment(session, key, parse_arms(arms), seed, coverage))
    _show(row, as_json, f"created draft experiment {key}: arms {row['arms']}")


@app.command()
def start(key: KeyArgument, db_url: DbUrlOption = None, as_json: JsonOption = False) -> None:
    """Start assigning shoppers and taking their orders and returns."""
    from tryon.experiments.store import start_experiment

    with open_catalog(db_url) as sessions, sessions.begin() as session:
        row = _experiment_row(start_experiment(session, key))
    _show(row, as_json, f"experiment {key} running since {row['started_at']}")


@app.command()
def stop(key: KeyArgument, db_url: DbUrlOption = None, as_json: JsonOption = False) -> None:
    """Stop the experiment: no new shoppers; returns of its orders are still taken."""
    from tryon.experiments.store import stop_experiment

    with open_catalog(db_url) as sessions, sessions.begin() as session:
        row = _experiment_row(stop_experiment(session, key))
    _show(row, as_json, f"experiment {key} stopped at {row['stopped_at']}")


@app.command("list")
def list_command(db_url: DbUrlOption = None, as_json: JsonOption = False) -> None:
    """The experiments, newest first, with their status and arms."""
    from tryon.experiments.store import list_experiments

    with open_catalog(db_url) as sessions, sessions.begin() as session:
        rows = [_experiment_row(experiment) for experiment in list_experiments(session)]
    if as_json:
        emit_json(rows, print_it=True, output=None)
        return
    if not rows:
        console.print("no experiments yet: `tryon ab create KEY`")
    for row in rows:
        arms = ", ".join(f"{name} {weight:.0%}" for name, weight in row["arms"].items())
        console.print(f"{row['key']:24s} {row['status']:8s} {arms}")


@app.command("import-events")
def import_events_command(
    file: Annotated[Path, typer.Argument(help="The CSV file of orders and returns.")],
    experiment: Annotated[
        str, typer.Option("--experiment", "-e", help="The experiment's key.", show_default=False)
    ],
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Import a store's orders and returns from CSV into an experiment.

    Columns (a header row names them, in any order):
      event_id    idempotency key; the lines of one order share it
      type        purchase or return
      unit_id     the shopper, as assigned to the experiment
      order_id    the order
      sku         the garment bought or returned
      quantity    a positive whole number of items
      unit_price  price of one item (purchase rows; empty on returns)
      time        ISO 8601, e.g. 2026-03-01T10:15:00+01:00 (UTC without offset)

    Bad rows are listed with line and column; the rest is still stored.
    Importing the same file again stores nothing new. SKUs the catalog
    lacks are stored and flagged in the report. Exit status 1 when any
    row failed.
    """
    from catalog.database import SQLITE_WRITE
    from tryon.experiments.importer import import_events

    if not file.is_file():
        fail(f"cannot read {file}: no such file; give the path of the CSV export")
    columns = (TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with (
        open_catalog(db_url) as sessions,
        Progress(*columns, console=console, transient=True, disable=as_json) as bar,
    ):
        task = bar.add_task("import", total=None)

        def show(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        try:
            with sessions.begin() as session:
                # Wait for SQLite's write lock up front, should a server be writing too.
                session.connection(execution_options={SQLITE_WRITE: True})
                result = import_events(session, experiment, file, on_progress=show)
        except UnicodeDecodeError as error:
            fail(f"{file} is not UTF-8 text ({error.reason}); export it as UTF-8 CSV")
    failed = [
        {"line": error.line, "column": error.column, "reason": error.reason}
        for error in result.errors
    ]
    values = {
        "experiment": experiment,
        "stored": result.stored,
        "duplicates": result.duplicates,
        "failed": len(failed),
        "unknown_skus": sorted(result.unknown_skus),
        "errors": failed,
    }
    if as_json:
        emit_json(values, print_it=True, output=None)
    else:
        _print_import(values)
    if failed:
        raise typer.Exit(1)


def _print_import(values: dict[str, Any]) -> None:
    if values["errors"]:
        table = Table("line", "column", "reason", title="rows not stored", title_justify="left")
        for error in values["errors"]:
            table.add_row(str(error["line"]), error["column"] or "-", error["reason"])
        console.print(table)
    if values["unknown_skus"]:
        console.print(
            f"[yellow]warning:[/] {len(values['unknown_skus'])} SKUs are not in the catalog "
            f"(stored, flagged in the report): {', '.join(values['unknown_skus'][:10])}",
            highlight=False,
        )
    console.print(
        f"{values['experiment']}: {values['stored']} events stored, {values['duplicates']} "
        f"already there, {values['failed']} rows failed"
    )


@app.command()
def report(
    key: KeyArgument,
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
    output: OutputOption = None,
    html: Annotated[
        Path | None, typer.Option(help="Also write the report as one self-contained HTML file.")
    ] = None,
    sequential: Annotated[
        float | None,
        typer.Option(
            help="Always-valid (sequential) intervals tuned for this many units per arm, so "
            "that looking every day is safe; default fixed-horizon intervals."
        ),
    ] = None,
) -> None:
    """Per-arm return rate, conversion and revenue per shopper, and each arm against control."""
    from tryon.experiments.report import build_report, srm_verdict, summary

    with open_catalog(db_url) as sessions, sessions.begin() as session:
        result = build_report(session, key, sequential_tuning=sequential)
        if html is not None:
            from tryon.experiments.html import render_html

            html.parent.mkdir(parents=True, exist_ok=True)
            html.write_text(render_html(session, key, sequential_tuning=sequential))
    emit_json(result, print_it=as_json, output=output)
    if not as_json:
        _print_report(result)
        console.print(summary(result))
        console.print(srm_verdict(result))
    if html is not None:
        console.print(f"HTML report: {html}")


def _print_report(result: dict[str, Any]) -> None:
    console.print(
        f"{'arm':12s} {'units':>8s} {'buyers':>7s} {'bought':>7s} {'returned':>8s} "
        f"{'return rate':>11s} {'try-ons':>8s}"
    )
    for arm in result["arms"]:
        rate = "-" if arm["return_rate"] is None else f"{arm['return_rate']:.1%}"
        console.print(
            f"{arm['name']:12s} {arm['units']:8d} {arm['buyers']:7d} {arm['items_bought']:7d} "
            f"{arm['items_returned']:8d} {rate:>11s} {arm['tryons']:8d}"
        )


@app.command()
def forget(
    unit_id: Annotated[
        str, typer.Argument(help="The shopper's pseudonymous id, as the storefront sent it.")
    ],
    db_url: DbUrlOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask to confirm.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Erase a shopper from every experiment (an erasure request).

    Deletes the unit's exposures, orders, returns, events and try-on records in every
    experiment. Reports made afterwards no longer count the unit at all. Cannot be undone.
    """
    from catalog.database import SQLITE_WRITE
    from tryon.experiments.store import forget_unit

    if not yes:
        typer.confirm(
            f"erase unit {unit_id!r} from every experiment? This cannot be undone", abort=True
        )
    with open_catalog(db_url) as sessions, sessions.begin() as session:
        session.connection(execution_options={SQLITE_WRITE: True})
        forgotten = forget_unit(session, unit_id)
    values = {**asdict(forgotten), "total": forgotten.total}
    if as_json:
        emit_json(values, print_it=True, output=None)
        return
    if not forgotten.total:
        console.print(f"nothing is stored about unit {unit_id!r}; nothing erased")
        return
    console.print(
        f"erased unit {unit_id!r}: {forgotten.exposures} exposures, {forgotten.events} events "
        f"({forgotten.purchases} orders of {forgotten.purchase_items} lines, "
        f"{forgotten.returns} returns), {forgotten.tryons} try-ons",
        highlight=False,
    )


@app.command()
def plan(
    return_rate: Annotated[
        float, typer.Option(help="Today's return rate (items returned / items bought).")
    ] = 0.25,
    mde: Annotated[
        float, typer.Option(help="Smallest relative change worth detecting: 0.10 = 25% -> 22.5%.")
    ] = 0.10,
    power: Annotated[float, typer.Option(help="Chance to detect a change of that size.")] = 0.8,
    alpha: Annotated[float, typer.Option(help="False-positive rate (two-sided).")] = 0.05,
    arms: Annotated[int, typer.Option(help="Arms, control included.")] = 2,
    items_per_buyer: Annotated[float, typer.Option(help="Items in a buyer's order.")] = 2.0,
    conversion: Annotated[float, typer.Option(help="Share of shoppers who buy.")] = 0.05,
    as_json: JsonOption = False,
) -> None:
    """How many items and shoppers each arm needs to detect a change in the return rate."""
    from tryon.experiments.stats import plan as plan_sample

    try:
        result = plan_sample(
            return_rate,
            mde,
            power,
            alpha,
            arms,
            items_per_buyer=items_per_buyer,
            conversion=conversion,
        )
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    values = {**asdict(result), "total_shoppers": result.total_shoppers}
    _show(
        values,
        as_json,
        f"{result.items_per_arm:,} items bought per arm, {result.shoppers_per_arm:,} shoppers "
        f"per arm ({result.total_shoppers:,} in all) to detect {return_rate:.1%} -> "
        f"{return_rate * (1 - abs(mde)):.1%} with {power:.0%} power at alpha {alpha:g}",
    )


@app.command()
def simulate(
    units: Annotated[int, typer.Option(min=1, help="Shoppers to send.")] = 2000,
    return_rate: Annotated[float, typer.Option(help="Control arm's return rate.")] = 0.25,
    effect: Annotated[
        float, typer.Option(help="Relative change of the return rate in the try-on arm.")
    ] = -0.10,
    conversion: Annotated[float, typer.Option(help="Share of shoppers who buy.")] = 0.3,
    experiment: Annotated[
        str | None,
        typer.Option(
            help="A running experiment to send to (its last arm gets the effect); default: "
            "create and start `simulation-SEED` with arms control and tryon."
        ),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(
            help="A running `tryon serve` (host:port) using the same --db-url; default: "
            "start the experiment service in this process on a loopback port."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the simulated shoppers.")] = 0,
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Send realistic shoppers through the real gRPC API: Assign each, then their orders
    and returns (multi-item orders, per-shopper return propensity, returns days later).

    Shoppers buy the catalog's active garments (made-up SKUs when it has none). The
    simulated 14 days start now, so orders and returns carry times in the coming weeks;
    use a database of its own (--db-url) to keep them away from a real experiment.
    """
    from catalog.models import Status
    from catalog.repository import list_garments
    from tryon.experiments.simulation import Shoppers

    with open_catalog(db_url) as sessions:
        with sessions.begin() as session:  # shoppers buy the catalog's garments, if any
            skus = tuple(g.sku for g in list_garments(session, status=Status.ACTIVE))
        try:
            shoppers = Shoppers(
                return_rate=return_rate, conversion=conversion, **({"skus": skus} if skus else {})
            )
        except ValueError as error:
            raise typer.BadParameter(str(error)) from None
        key = experiment or _new_simulation(sessions, seed)
        if target is None:
            from tryon.server.experiments import ExperimentServerThread

            with ExperimentServerThread(sessions) as running:
                sent = _send_traffic(running.target, key, units, shoppers, effect, seed)
        else:
            sent = _send_traffic(target, key, units, shoppers, effect, seed)
    _show({"experiment": key, **sent}, as_json, f"sent to {key}: {sent}")
    if not as_json:
        console.print(f"report: tryon ab report {key}")


@app.command()
def bench(
    events: Annotated[
        int, typer.Option(min=1, help="Purchase and return events to load and report over.")
    ] = 1_000_000,
    aa: Annotated[
        int | None,
        typer.Option(
            "--aa",
            min=1,
            help="Instead: run this many A/A experiments through the store and report the "
            "coverage of the 95% intervals and the SRM firing rate.",
            show_default=False,
        ),
    ] = None,
    units: Annotated[int, typer.Option(min=10, help="Shoppers per A/A experiment.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the simulated shoppers.")] = 0,
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the scratch database and say where it is.")
    ] = False,
    db_url: DbUrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Benchmark the experiment store in a scratch database beside --db-url (a schema of
    its own on PostgreSQL, a temporary file on SQLite), dropped afterwards unless --keep.

    By default: bulk-load simulated traffic (COPY on PostgreSQL) and time `report` over
    it. With --aa N: N small A/A experiments go through assignment, event recording and
    the SQL report, and the share of intervals covering zero (about 95%) and of SRM
    alarms (about 0.1%) is printed.
    """
    from catalog.database import resolve_database_url
    from tryon.experiments.bench import check_backend

    url = resolve_database_url(db_url)
    try:
        check_backend(url)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--db-url") from None
    try:
        values = _run_bench(url, events, aa, units, seed, keep, quiet=as_json)
    except OperationalError as error:
        fail(f"cannot use the database at --db-url: {error.orig or error}")
    if as_json:
        emit_json(values, print_it=True, output=None)
        return
    if aa is None:
        console.print(
            f"{values['events']:,} events ({values['buyers']:,} orders of {values['items']:,} "
            f"items, {values['returns']:,} returns) from {values['units']:,} shoppers: "
            f"loaded in {values['load_s']:.1f} s; report in {values['report_s']:.2f} s "
            f"(again: {values['report_again_s']:.2f} s)"
        )
    else:
        coverage = ", ".join(f"{name} {share:.1%}" for name, share in values["coverage"].items())
        console.print(
            f"{aa} A/A experiments of {units} shoppers in {values['seconds']:.0f} s: 95% "
            f"intervals covered zero: {coverage}; SRM fired in {values['srm_rate']:.1%}"
        )
    console.print(f"database: {values['database']}")


def _run_bench(
    url: str, events: int, aa: int | None, units: int, seed: int, keep: bool, quiet: bool
) -> dict[str, Any]:
    """The figures of the benchmark `tryon ab bench` asked for, with progress bars."""
    from tryon.experiments.bench import aa_benchmark, load_benchmark, scratch_database

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with (
        scratch_database(url, keep=keep) as database,
        Progress(*columns, console=console, transient=True, disable=quiet) as bar,
    ):
        if aa is None:
            task = bar.add_task("loading", total=None)
            figures = load_benchmark(
                database, events, seed=seed, on_step=lambda s: bar.update(task, description=s)
            )
            values = {k: v for k, v in asdict(figures).items() if k != "report"}
        else:
            task = bar.add_task("A/A experiments", total=aa)
            values = asdict(
                aa_benchmark(
                    database.sessions,
                    aa,
                    units,
                    seed=seed,
                    on_progress=lambda done, _: bar.update(task, completed=done),
                )
            )
    values["database"] = database.where if keep else f"{database.where} (dropped)"
    return values


def _new_simulation(sessions: Any, seed: int) -> str:
    from tryon.experiments.store import create_experiment, start_experiment

    key = f"simulation-{seed}"
    with sessions.begin() as session:
        create_experiment(session, key, [("control", 50), ("tryon", 50)])
        start_experiment(session, key)
    return key


def _send_traffic(
    target: str, key: str, units: int, shoppers: Any, effect: float, seed: int
) -> dict[str, int]:
    """`send_traffic` to the service at `target`, with progress bars."""
    from tryon.client import ExperimentClient
    from tryon.experiments.traffic import send_traffic

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with ExperimentClient(target) as client, Progress(*columns, console=console) as bar:
        tasks: dict[str, Any] = {}

        def show(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done)

        return send_traffic(client, key, units, shoppers, effect, seed, on_progress=show)


def _show(values: dict[str, Any], as_json: bool, line: str) -> None:
    if as_json:
        emit_json(values, print_it=True, output=None)
    else:
        console.print(line)
