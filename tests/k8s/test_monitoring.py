"""The dashboard and the alert rules query only metrics the server really exports."""

from __future__ import annotations

import json
import re

import yaml
from k8s_paths import K8S

METRIC = re.compile(r"\b((?:tryon|process)_[a-z_]+)\b")


def exported_names(metrics_page: str) -> set[str]:
    return {
        line.split("{")[0].split()[0] for line in metrics_page.splitlines() if line[:1].isalpha()
    }


def queried_names(exprs: list[str]) -> set[str]:
    return {name for expr in exprs for name in METRIC.findall(expr)}


def test_every_dashboard_query_names_an_exported_metric(metrics_page):
    dashboard = json.loads((K8S / "monitoring/grafana-dashboard.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    exported = exported_names(metrics_page)
    missing = {name for name in queried_names(exprs) if name not in exported}
    assert not missing, f"the dashboard queries metrics the server does not export: {missing}"
    assert "tryon_try_ons_in_progress" in queried_names(exprs)


def test_every_alert_names_an_exported_metric(metrics_page):
    rules = yaml.safe_load((K8S / "monitoring/alerts.yaml").read_text())
    exprs = [rule["expr"] for group in rules["spec"]["groups"] for rule in group["rules"]]
    exported = exported_names(metrics_page)
    missing = {name for name in queried_names(exprs) if name not in exported}
    assert not missing, f"alerts query metrics the server does not export: {missing}"
    assert all(
        rule["labels"]["severity"] in ("page", "warn")
        for g in rules["spec"]["groups"]
        for rule in g["rules"]
    )
