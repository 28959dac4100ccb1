"""Every dashboard panel and every alert rule queries a metric podfleet really exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from promql_names import BUILTIN_SERIES, exported_series, metric_names

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "monitoring" / "dashboards" / "podfleet.json"
ALERTS = ROOT / "monitoring" / "prometheus" / "alerts.yml"


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def _dashboard_exprs() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [(p["title"], t["expr"]) for p in _panels(dashboard) for t in p.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        if isinstance(query, dict):
            # Grafana's label_values(<series selector>, <label>): the selector is PromQL.
            match = re.fullmatch(r"label_values\((.*),\s*\w+\)", query["query"].strip())
            assert match, f"variable {variable['name']}: unexpected query {query['query']!r}"
            exprs.append((f"variable {variable['name']}", match.group(1)))
    return exprs


def _rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(ALERTS.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def _recorded() -> set[str]:
    return {rule["record"] for rule in _rules() if "record" in rule}


def _unknown(expr: str) -> set[str]:
    known = exported_series() | BUILTIN_SERIES | _recorded()
    return {name for name in metric_names(expr) if name not in known}


def test_the_name_parser_sees_metrics_and_skips_labels_and_functions() -> None:
    # Given a query with functions, grouping, matchers, ranges, numbers and a variable
    expr = ('histogram_quantile(0.99, sum by (le, verb) (rate(x_bucket{code!~"2..", '
            'namespace=~"$namespace"}[$__rate_interval]))) > 1e3 and on () up == 0')
    # Then only the series are found
    assert metric_names(expr) == {"x_bucket", "up"}


def test_an_unknown_metric_is_caught() -> None:
    # A query naming a metric nobody exports must be reported (so this test can fail)
    assert _unknown("sum(rate(podfleet_no_such_thing_total[5m]))") == {
        "podfleet_no_such_thing_total"}


@pytest.mark.parametrize(("title", "expr"), _dashboard_exprs())
def test_dashboard_query_names_exported_metrics(title: str, expr: str) -> None:
    assert metric_names(expr), f"panel {title!r} queries no metric"
    assert _unknown(expr) == set(), f"panel {title!r}"


@pytest.mark.parametrize("rule", _rules(), ids=lambda r: r.get("alert") or r.get("record"))
def test_rule_names_exported_metrics(rule: dict[str, Any]) -> None:
    assert _unknown(rule["expr"]) == set()
