"""Benchmarks of the experiment store: a report over many events, and A/A runs end to end.

:func:`load_benchmark` bulk-loads simulated traffic (``COPY`` on PostgreSQL, large
``executemany`` batches on SQLite) into a scratch database and times
:func:`~tryon.experiments.report.build_report` over it. :func:`aa_benchmark` runs many
small A/A experiments through the store's own write path (``assign``, ``record_events``)
and the SQL report, and counts how often the 95% intervals cover zero and the SRM check
fires. Both work in a scratch database (:func:`scratch_database`): a schema of its own on
PostgreSQL, a file in a temporary folder on SQLite, dropped afterwards unless kept.
"""

from __future__ import annotations

import csv
import io
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from catalog.database import create_catalog_engine, make_sessionmaker, upgrade, url_with_schema
from tryon.experiments.report import SRM_THRESHOLD, build_report
from tryon.experiments.simulation import PRICE_SHAPE, Shoppers, simulate_traffic
from tryon.experiments.store import assign, create_experiment, record_events, start_experiment

START = datetime(2026, 1, 5, tzinfo=timezone.utc)
DAYS = 14.0
_BATCH = 50_000


@dataclass(frozen=True)
class ScratchDatabase:
    """A migrated database of its own; ``where`` says where it is, for the printout."""

    sessions: sessionmaker[Session]
    engine: Engine
    where: str


def check_backend(url: str) -> str:
    """The backend of ``url`` if benchmarks can run on it; a ``ValueError`` saying so if not."""
    backend = make_url(url).get_backend_name()
    if backend not in ("postgresql", "sqlite"):
        raise ValueError(f"benchmarks run on PostgreSQL or SQLite, not {backend}")
    return backend


@contextmanager
def scratch_database(url: str, keep: bool = False) -> Iterator[ScratchDatabase]:
    """A new database at the newest schema beside ``url``: a new schema in PostgreSQL, a
    new file in a temporary folder for SQLite. Dropped on exit unless ``keep``."""
    backend = check_backend(url)
    if backend == "postgresql":
        schema = f"tryon_bench_{uuid.uuid4().hex[:12]}"
        admin = create_catalog_engine(url)
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        scratch_url = url_with_schema(url, schema)
        where = f"schema {schema} of {admin.url.render_as_string(hide_password=True)}"
    else:
        folder = Path(tempfile.mkdtemp(prefix="tryon-bench-"))
        scratch_url = f"sqlite:///{folder / 'bench.db'}"
        where = str(folder / "bench.db")
    engine = create_catalog_engine(scratch_url)
    try:
        upgrade(engine)
        yield ScratchDatabase(make_sessionmaker(engine), engine, where)
    finally:
        engine.dispose()
        if not keep and backend == "postgresql":
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        elif not keep:
            shutil.rmtree(folder, ignore_errors=True)
        if backend == "postgresql":
            admin.dispose()


@dataclass(frozen=True)
class LoadFigures:
    """What :func:`load_benchmark` loaded and how long each step took, in seconds."""

    events: int
    units: int
    buyers: int
    items: int
    returns: int
    generate_s: float
    load_s: float
    report_s: float
    report_again_s: float
    report: dict


def _microseconds(values: np.ndarray) -> list[str]:
    """Naive-UTC timestamps as the database stores them (``UTCDateTime``), from µs offsets."""
    moments = np.datetime64(START.replace(tzinfo=None), "us") + values.astype("timedelta64[us]")
    return np.char.replace(np.datetime_as_string(moments, unit="us"), "T", " ").tolist()


def simulated_rows(
    events: int, shoppers: Shoppers, arm_ids: list[int], experiment_id: int, seed: int = 0
) -> dict[str, tuple[list[str], list[tuple]]]:
    """Rows of ``events`` purchase and return events of simulated traffic, per table.

    Each table maps to ``(columns, rows)`` with explicit ids. Buyers order
    ``1 + Poisson(items_per_buyer - 1)`` distinct SKUs and return each with their own
    Beta-distributed propensity (as :mod:`~tryon.experiments.simulation`), a return event
    per SKU sent back; the other shoppers are exposed and buy nothing. The last returns are
    left out so that the events number exactly ``events``.
    """
    rng = np.random.default_rng(seed)
    per_buyer = 1 + shoppers.items_per_buyer * shoppers.return_rate
    buyers = max(1, int(events / per_buyer * 0.97))
    while True:
        lines = np.minimum(
            1 + rng.poisson(shoppers.items_per_buyer - 1, buyers), len(shoppers.skus)
        )
        concentration = 1 / shoppers.return_correlation - 1
        propensity = rng.beta(
            shoppers.return_rate * concentration,
            (1 - shoppers.return_rate) * concentration,
            buyers,
        )
        owner = np.repeat(np.arange(buyers), lines)
        returned = rng.random(len(owner)) < propensity[owner]
        if buyers + returned.sum() >= events:
            break
        buyers = min(events, int(buyers * 1.1) + 1)
    keep_returns = np.flatnonzero(returned)[: events - buyers]
    units = max(buyers, round(buyers / shoppers.conversion))
    day_us = 86_400e6
    seen = rng.uniform(0, DAYS * day_us, units).astype(np.int64)
    bought = np.minimum(seen[:buyers] + rng.exponential(12 * 3600e6, buyers), DAYS * day_us)
    bought = bought.astype(np.int64)
    line_in_order = np.arange(len(owner)) - np.repeat(np.cumsum(lines) - lines, lines)
    sku_index = (rng.integers(0, len(shoppers.skus), buyers)[owner] + line_in_order) % len(
        shoppers.skus
    )
    prices = np.round(
        rng.gamma(PRICE_SHAPE * 4, shoppers.mean_price / (PRICE_SHAPE * 4), len(shoppers.skus)), 2
    )
    returned_at = bought[owner[keep_returns]] + (
        (1 + rng.exponential(shoppers.mean_return_days - 1, len(keep_returns))) * day_us
    ).astype(np.int64)

    unit_ids = [f"unit-{i}" for i in range(units)]
    orders = [f"order-{i}" for i in range(buyers)]
    skus = [shoppers.skus[i] for i in sku_index.tolist()]
    arms = np.asarray(arm_ids)[rng.integers(0, len(arm_ids), units)].tolist()
    seen_text, bought_text = _microseconds(seen), _microseconds(bought)
    returned_text = _microseconds(returned_at)
    owners, returning = owner.tolist(), owner[keep_returns].tolist()
    return_rows = range(buyers + 1, buyers + len(keep_returns) + 1)
    return {
        "exposures": (
            ["id", "experiment_id", "arm_id", "unit_id", "bucket", "first_seen"],
            [(i + 1, experiment_id, arms[i], unit_ids[i], 0.5, seen_text[i]) for i in range(units)],
        ),
        "experiment_events": (
            ["id", "experiment_id", "event_id", "kind", "unit_id", "occurred_at", "recorded_at"],
            [
                (b + 1, experiment_id, f"p-{b}", "purchase", unit_ids[b], t, t)
                for b, t in enumerate(bought_text)
            ]
            + [
                (row, experiment_id, f"r-{row}", "return", unit_ids[b], t, t)
                for row, b, t in zip(return_rows, returning, returned_text, strict=True)
            ],
        ),
        "purchases": (
            ["id", "experiment_id", "event_row_id", "order_id", "unit_id", "purchased_at"],
            [
                (b + 1, experiment_id, b + 1, orders[b], unit_ids[b], bought_text[b])
                for b in range(buyers)
            ],
        ),
        "purchase_items": (
            ["id", "purchase_id", "sku", "quantity", "unit_price"],
            [
                (i + 1, owners[i] + 1, skus[i], 1, float(prices[sku_index[i]]))
                for i in range(len(owners))
            ],
        ),
        "returns": (
            ["id", "event_row_id", "purchase_id", "sku", "quantity", "returned_at"],
            [
                (row, row, b + 1, skus[line], 1, t)
                for row, b, line, t in zip(
                    return_rows, returning, keep_returns.tolist(), returned_text, strict=True
                )
            ],
        ),
    }


def bulk_load(engine: Engine, tables: dict[str, tuple[list[str], list[tuple]]]) -> None:
    """Insert the rows of :func:`simulated_rows`, in its table order, as fast as each backend
    takes them: ``COPY`` on PostgreSQL (then its id sequences moved past the ids used),
    ``executemany`` in batches of 50,000 on SQLite; one transaction."""
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        postgres = engine.dialect.name == "postgresql"
        if not postgres:
            cursor.execute("BEGIN")  # the catalog's SQLite connections otherwise autocommit
        for table, (columns, rows) in tables.items():
            names = ", ".join(columns)
            if postgres:
                buffer = io.StringIO()
                csv.writer(buffer, lineterminator="\n").writerows(rows)
                buffer.seek(0)
                cursor.copy_expert(f"COPY {table} ({names}) FROM STDIN WITH (FORMAT csv)", buffer)
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT coalesce(max(id), 1) FROM {table}))"
                )
                continue
            marks = ", ".join("?" for _ in columns)
            for first in range(0, len(rows), _BATCH):
                cursor.executemany(
                    f"INSERT INTO {table} ({names}) VALUES ({marks})", rows[first : first + _BATCH]
                )
        connection.commit()
    finally:
        connection.close()


def load_benchmark(
    database: ScratchDatabase,
    events: int,
    shoppers: Shoppers | None = None,
    seed: int = 0,
    on_step: Callable[[str], None] | None = None,
) -> LoadFigures:
    """Load ``events`` simulated events into experiment ``bench`` of ``database`` and time
    the report over them, twice (the second run finds the data in the database's cache).

    The tables are analysed after loading, as autovacuum would soon do.
    """
    shoppers = shoppers or Shoppers(conversion=0.3)
    step = on_step or (lambda name: None)
    with database.sessions.begin() as session:
        experiment = create_experiment(session, "bench", [("control", 50), ("tryon", 50)])
        start_experiment(session, "bench", at=START)
        experiment_id, arm_ids = experiment.id, [arm.id for arm in experiment.arms]
    step("generating events")
    began = time.perf_counter()
    tables = simulated_rows(events, shoppers, arm_ids, experiment_id, seed)
    generated = time.perf_counter()
    step("loading")
    bulk_load(database.engine, tables)
    with database.engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE")
    loaded = time.perf_counter()
    step("reporting")
    timings = []
    for _ in range(2):
        with database.sessions.begin() as session:
            began_report = time.perf_counter()
            report = build_report(session, "bench")
            timings.append(time.perf_counter() - began_report)
    return LoadFigures(
        events=len(tables["experiment_events"][1]),
        units=len(tables["exposures"][1]),
        buyers=len(tables["purchases"][1]),
        items=len(tables["purchase_items"][1]),
        returns=len(tables["returns"][1]),
        generate_s=generated - began,
        load_s=loaded - generated,
        report_s=timings[0],
        report_again_s=timings[1],
        report=report,
    )


@dataclass(frozen=True)
class AAFigures:
    """How often :func:`aa_benchmark`'s A/A experiments' intervals covered zero, per metric
    (absolute differences, and the relative one of the return rate), and the SRM rate."""

    experiments: int
    units: int
    coverage: dict[str, float]
    tested: dict[str, int]
    srm_rate: float
    seconds: float


def aa_benchmark(
    sessions: sessionmaker[Session],
    experiments: int,
    units: int,
    shoppers: Shoppers | None = None,
    seed: int = 0,
    on_progress: Callable[[int, int], None] | None = None,
) -> AAFigures:
    """Run ``experiments`` A/A tests of ``units`` shoppers each through the store and the
    SQL report; the share of 95% intervals covering zero and of SRM checks firing.

    Each experiment is created and started, its shoppers assigned with ``assign`` (the
    GrowthBook hashing) and their simulated orders and returns recorded with
    ``record_events`` (one transaction per experiment), then ``build_report`` reads it.
    A comparison without enough data yet counts as not tested.
    """
    shoppers = shoppers or Shoppers(conversion=0.3)
    names = ("return_rate", "conversion", "revenue_per_unit", "return_rate_relative")
    covered = dict.fromkeys(names, 0)
    tested = dict.fromkeys(names, 0)
    fired = 0
    began = time.perf_counter()
    for index in range(experiments):
        key = f"aa-{seed}-{index}"
        with sessions.begin() as session:
            create_experiment(session, key, [("control", 50), ("tryon", 50)])
            start_experiment(session, key, at=START)

            def arm_of(unit: str, session: Session = session, key: str = key) -> str | None:
                return assign(session, key, unit, at=START).arm

            traffic = simulate_traffic(
                arm_of, units, start=START, days=DAYS, shoppers=shoppers, seed=seed + index
            )
            record_events(session, key, traffic.events)
        with sessions.begin() as session:
            report = build_report(session, key)
        fired += report["srm_p_value"] < SRM_THRESHOLD
        for comparison in report["comparisons"]:
            for scale, suffix in (("absolute", ""), ("relative", "_relative")):
                name = comparison["metric"] + suffix
                result = comparison[scale]
                if name in covered and result is not None:
                    tested[name] += 1
                    covered[name] += result["ci_low"] <= 0 <= result["ci_high"]
        if on_progress is not None:
            on_progress(index + 1, experiments)
    return AAFigures(
        experiments=experiments,
        units=units,
        coverage={name: covered[name] / tested[name] if tested[name] else 0.0 for name in names},
        tested=tested,
        srm_rate=fired / experiments,
        seconds=time.perf_counter() - began,
    )
