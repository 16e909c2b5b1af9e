"""The benchmarks load what they say, report over all of it and clean up after themselves."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from sqlalchemy import text
from typer.testing import CliRunner

from catalog.database import create_catalog_engine
from tryon.cli import app
from tryon.experiments.bench import load_benchmark, scratch_database


def _exists(where: str, url: str) -> bool:
    if not where.startswith("schema "):
        return Path(where).exists()
    schema = where.split()[1]
    engine = create_catalog_engine(url)
    with engine.connect() as connection:
        found = connection.execute(
            text("SELECT count(*) FROM pg_namespace WHERE nspname = :name"), {"name": schema}
        ).scalar_one()
    engine.dispose()
    return bool(found)


def test_every_bulk_loaded_event_is_in_the_report_and_the_scratch_db_is_dropped(
    empty_db_url: str,
) -> None:
    with scratch_database(empty_db_url) as database:
        figures = load_benchmark(database, 3_000, seed=1)
        assert _exists(database.where, empty_db_url)
    assert figures.events == 3_000
    assert figures.buyers + figures.returns == figures.events
    arms = figures.report["arms"]
    assert sum(arm["units"] for arm in arms) == figures.units
    assert sum(arm["buyers"] for arm in arms) == figures.buyers
    assert sum(arm["items_bought"] for arm in arms) == figures.items
    assert sum(arm["items_returned"] for arm in arms) == figures.returns
    assert 0.15 < figures.returns / figures.items < 0.35  # the simulated 25% return rate
    assert not _exists(database.where, empty_db_url)


def test_bench_command_prints_its_figures_and_keeps_the_database_when_asked(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'unused.db'}"
    result = CliRunner().invoke(
        app, ["ab", "bench", "--events", "500", "--keep", "--json", "--db-url", url]
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert figures["events"] == 500 and figures["report_s"] > 0
    kept = Path(figures["database"])
    assert kept.is_file()
    shutil.rmtree(kept.parent)
    refused = CliRunner().invoke(app, ["ab", "bench", "--db-url", "mysql://localhost/shop"])
    assert refused.exit_code == 2 and "PostgreSQL or SQLite" in refused.output


def test_aa_bench_runs_each_experiment_through_the_store_and_tests_every_metric(
    tmp_path,
) -> None:
    url = f"sqlite:///{tmp_path / 'unused.db'}"
    result = CliRunner().invoke(
        app, ["ab", "bench", "--aa", "3", "--units", "300", "--json", "--db-url", url]
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert figures["experiments"] == 3
    assert set(figures["tested"].values()) == {3}  # every comparison had data to test
    assert all(share in (0, 1 / 3, 2 / 3, 1) for share in figures["coverage"].values())
    assert figures["database"].endswith("(dropped)")
