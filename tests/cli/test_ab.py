"""`tryon ab` as an experiment owner uses it: define, start, simulate through gRPC, report."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from typer.testing import CliRunner

from catalog.database import create_catalog_engine, make_sessionmaker, upgrade
from tryon.cli import app
from tryon.experiments.store import assign, create_experiment, start_experiment, stop_experiment

REPORT_ARM_KEYS = {
    "name",
    "units",
    "buyers",
    "items_bought",
    "items_returned",
    "return_rate",
    "conversion",
    "revenue_per_unit",
    "tryons",
}


@pytest.fixture()
def db_url(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    engine = create_catalog_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def ab(db_url: str, *args: str):
    return CliRunner().invoke(app, ["ab", *args, "--db-url", db_url])


def test_an_experiment_is_created_started_listed_and_stopped(db_url):
    created = ab(db_url, "create", "fit-test", "--arms", "control:40,tryon:60", "--json")
    assert created.exit_code == 0, created.output
    assert json.loads(created.stdout)["arms"] == {"control": 0.4, "tryon": 0.6}
    assert ab(db_url, "start", "fit-test").exit_code == 0
    listed = json.loads(ab(db_url, "list", "--json").stdout)
    assert [(row["key"], row["status"]) for row in listed] == [("fit-test", "running")]
    assert ab(db_url, "stop", "fit-test").exit_code == 0
    assert json.loads(ab(db_url, "list", "--json").stdout)[0]["status"] == "stopped"


def test_mistakes_are_usage_or_product_errors_with_the_fix(db_url):
    bad_arms = ab(db_url, "create", "x", "--arms", "control:half,tryon:50")
    assert bad_arms.exit_code == 2 and "NAME:WEIGHT" in bad_arms.output
    unknown = ab(db_url, "start", "never-created")
    assert unknown.exit_code == 1 and "tryon ab create" in unknown.output
    assert ab(db_url, "create", "dup").exit_code == 0
    again = ab(db_url, "create", "dup")
    assert again.exit_code == 1 and "pick another key" in again.output


def test_plan_gives_the_sample_size_of_two_proportions():
    result = CliRunner().invoke(
        app, ["ab", "plan", "--return-rate", "0.25", "--mde", "0.1", "--json"]
    )
    assert result.exit_code == 0, result.output
    planned = json.loads(result.stdout)
    assert 4400 <= planned["items_per_arm"] <= 4700  # the textbook ~4,500 items per arm
    assert planned["total_shoppers"] == 2 * planned["shoppers_per_arm"]


def test_simulated_shoppers_go_through_grpc_into_the_report(tmp_path):
    from tryon.demo import build_sample_catalog

    db_url = build_sample_catalog(tmp_path / "shop.db", 3)  # shoppers buy these garments
    sent = ab(db_url, "simulate", "--units", "400", "--conversion", "0.5", "--json")
    assert sent.exit_code == 0, sent.output
    counts = json.loads(sent.stdout)
    assert counts["experiment"] == "simulation-0" and counts["in_experiment"] == 400
    assert counts["stored"] > 150 and counts["duplicates"] == 0
    page = tmp_path / "report.html"
    result = ab(db_url, "report", "simulation-0", "--json", "--html", str(page))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert sum(arm["units"] for arm in report["arms"]) == 400
    assert all(set(arm) >= REPORT_ARM_KEYS for arm in report["arms"])
    metrics = {comparison["metric"] for comparison in report["comparisons"]}
    assert metrics == {"return_rate", "conversion", "revenue_per_unit"}
    assert 0 <= report["srm_p_value"] <= 1
    assert report["unknown_skus"] == []  # the simulated shoppers bought catalog garments
    html = page.read_text()
    assert "<svg" in html and 'src="http' not in html  # plots inline, nothing fetched
    # Sending the same shoppers again stores nothing twice (events are idempotent).
    again = json.loads(
        ab(
            db_url,
            "simulate",
            "--units",
            "400",
            "--conversion",
            "0.5",
            "--json",
            "--experiment",
            "simulation-0",
        ).stdout  # fmt: skip
    )
    assert again["stored"] == 0 and again["duplicates"] == counts["stored"]


HEADER = "event_id,type,unit_id,order_id,sku,quantity,unit_price,time\n"
ORDERS = (
    "p1,purchase,u1,o1,TOP-1,2,19.90,2026-03-02T10:00:00+01:00\n"
    "p1,purchase,u1,o1,DRESS-2,1,49.00,2026-03-02T10:00:00+01:00\n"
    "r1,return,u1,o1,TOP-1,1,,2026-03-09T12:00:00Z\n"
)


@pytest.fixture()
def running(db_url: str) -> str:
    """A 50/50 experiment `fit` started on 1 March 2026, shopper u1 exposed that day."""
    engine = create_catalog_engine(db_url)
    with make_sessionmaker(engine).begin() as session:
        create_experiment(session, "fit", [("control", 1), ("tryon", 1)])
        start_experiment(session, "fit", at=datetime(2026, 3, 1, tzinfo=timezone.utc))
        assign(session, "fit", "u1", at=datetime(2026, 3, 1, 12, tzinfo=timezone.utc))
    engine.dispose()
    return "fit"


def test_import_events_documents_its_columns():
    result = CliRunner().invoke(app, ["ab", "import-events", "--help"])
    assert result.exit_code == 0
    for column in ("event_id", "type", "unit_id", "order_id", "sku", "quantity", "unit_price"):
        assert f" {column} " in result.output


def test_import_events_stores_orders_once_and_flags_unknown_skus(db_url, running, tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text(HEADER + ORDERS)
    first = ab(db_url, "import-events", str(path), "--experiment", running)
    assert first.exit_code == 0, first.output
    assert "2 events stored, 0 already there, 0 rows failed" in first.output
    assert "not in the catalog" in first.output and "DRESS-2" in first.output
    again = ab(db_url, "import-events", str(path), "--experiment", running, "--json")
    assert again.exit_code == 0
    assert json.loads(again.stdout) | {"unknown_skus": []} == {
        "experiment": "fit",
        "stored": 0,
        "duplicates": 2,
        "failed": 0,
        "unknown_skus": [],
        "errors": [],
    }
    report = json.loads(ab(db_url, "report", running, "--json").stdout)
    arm = next(arm for arm in report["arms"] if arm["units"])
    assert (arm["items_bought"], arm["items_returned"]) == (3, 1)
    assert report["unknown_skus"] == ["DRESS-2", "TOP-1"]


def test_import_events_lists_bad_rows_stores_the_rest_and_exits_1(db_url, running, tmp_path):
    engine = create_catalog_engine(db_url)
    with make_sessionmaker(engine).begin() as session:
        stop_experiment(session, running, at=datetime(2026, 3, 5, tzinfo=timezone.utc))
    engine.dispose()
    path = tmp_path / "orders.csv"
    path.write_text(
        HEADER
        + ORDERS  # bought before the stop; its return after it still counts
        + "p2,purchase,u1,o2,TOP-1,-1,19.90,2026-03-03T10:00:00Z\n"  # line 5
        + "p3,purchase,u1,o3,TOP-1,1,19.90,2026-03-06T10:00:00Z\n"  # line 6: after the stop
        + "p4,purchase,u1,o4,TOP-1,1\n"  # line 7: cells missing
        + "r2,return,u1,o9,TOP-1,1,,2026-03-07T10:00:00Z\n"  # line 8: no such order
    )
    result = ab(db_url, "import-events", str(path), "--experiment", running, "--json")
    assert result.exit_code == 1
    values = json.loads(result.stdout)
    assert values["stored"] == 2
    assert [(e["line"], e["column"]) for e in values["errors"]] == [
        (5, "quantity"),
        (6, None),
        (7, None),
        (8, None),
    ]
    assert "stopped at 2026-03-05" in values["errors"][1]["reason"]
    assert "order 'o9'" in values["errors"][3]["reason"]
    shown = ab(db_url, "import-events", str(path), "--experiment", running)
    assert shown.exit_code == 1
    assert "rows not stored" in shown.output and "0 events stored, 2 already there" in shown.output


def test_import_events_into_an_unknown_experiment_stores_nothing(db_url, tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text(HEADER + ORDERS)
    result = ab(db_url, "import-events", str(path), "--experiment", "nope")
    assert result.exit_code == 1 and "tryon ab create nope" in result.output
    missing = ab(db_url, "import-events", str(tmp_path / "absent.csv"), "--experiment", "nope")
    assert missing.exit_code == 1 and "no such file" in missing.output
