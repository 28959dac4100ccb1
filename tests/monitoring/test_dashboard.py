"""The Grafana dashboard is well-formed, centred on launch latency, and provisioned."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "monitoring" / "dashboards" / "podfleet.json"
PROVISIONING = ROOT / "monitoring" / "grafana" / "provisioning"


def _dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def _exprs(panel: dict[str, Any]) -> list[str]:
    return [t["expr"] for t in panel.get("targets", [])]


def test_panels_have_unique_ids_and_queries() -> None:
    panels = _dashboard()["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        if panel["type"] != "row":
            assert _exprs(panel), panel["title"]
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]


def test_launch_latency_percentiles_and_heatmap_are_shown() -> None:
    panels = _dashboard()["panels"]
    percentiles = [p for p in panels if p["type"] == "timeseries"
                   and p["title"].startswith("Launch latency p50")]
    assert len(percentiles) == 1
    exprs = " ".join(_exprs(percentiles[0]))
    for quantile in ("0.5", "0.95", "0.99"):
        assert f"histogram_quantile({quantile}, " in exprs
    assert "podfleet_launch_latency_seconds_bucket" in exprs
    heatmaps = [p for p in panels if p["type"] == "heatmap"]
    assert heatmaps and heatmaps[0]["targets"][0]["format"] == "heatmap"


def test_cluster_namespace_and_queue_variables_filter_the_queries() -> None:
    dashboard = _dashboard()
    names = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "cluster", "namespace", "queue"} <= names
    all_exprs = " ".join(e for p in dashboard["panels"] for e in _exprs(p))
    assert 'namespace=~"$namespace"' in all_exprs
    assert 'queue=~"$queue"' in all_exprs
    assert 'cluster=~"$cluster"' in all_exprs


def test_each_cluster_shows_its_reachability_launches_and_lease_holders() -> None:
    panels = {p["title"]: p for p in _dashboard()["panels"]}
    for title, metric in (("Cluster API reachable", "podfleet_cluster_reachable"),
                          ("Launches/s by cluster", "podfleet_pods_created_total"),
                          ("Watcher lease holders by cluster",
                           "podfleet_watcher_lease_held")):
        expr = " ".join(_exprs(panels[title]))
        assert metric in expr and "by (cluster)" in expr, title


def test_grafana_provisioning_points_at_the_mounted_dashboards() -> None:
    # Given the provider config and the compose mounts
    provider = yaml.safe_load((PROVISIONING / "dashboards" / "podfleet.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    # Then the provider reads the folder the dashboards are mounted at
    assert f"./monitoring/dashboards:{path}:ro" in mounts
    datasource = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"


def test_docs_list_every_exported_metric() -> None:
    from promql_names import exported_series

    docs = (ROOT / "docs" / "monitoring.md").read_text()
    bases = {name.removesuffix("_bucket").removesuffix("_sum").removesuffix("_count")
             for name in exported_series()}
    assert {name for name in bases if f"`{name}`" not in docs} == set()
