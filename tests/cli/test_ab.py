"""`tryon ab` as an experiment owner uses it: define, start, simulate through gRPC, report."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from catalog.database import create_catalog_engine, upgrade
from tryon.cli import app

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


def test_simulated_shoppers_go_through_grpc_into_the_report(db_url, tmp_path):
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
