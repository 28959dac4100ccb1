"""Clusters as configuration: today's settings make one `default` cluster; a clusters file
is checked at start, each fault one line naming the cluster."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from podfleet.settings import Settings, SettingsError


def kubeconfig(folder: Path, name: str, contexts: tuple[str, ...] = ("ctx",)) -> Path:
    path = folder / f"{name}.kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": contexts[0],
        "clusters": [{"name": c, "cluster": {"server": "http://127.0.0.1:1"}} for c in contexts],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": c, "context": {"cluster": c, "user": "u"}} for c in contexts]}))
    return path


def settings_with(tmp_path: Path, clusters: object, **env: str) -> Settings:
    path = tmp_path / "clusters.yaml"
    path.write_text(yaml.safe_dump(clusters))
    return Settings.from_env({"PODFLEET_CLUSTERS_FILE": str(path), **env})


def test_without_a_clusters_file_todays_settings_make_one_default_cluster() -> None:
    settings = Settings.from_env({
        "PODFLEET_KUBECONFIG": "/etc/k", "PODFLEET_KUBE_CONTEXT": "prod",
        "PODFLEET_WATCH_NAMESPACES": "a,b", "PODFLEET_NAMESPACE": "a",
        "PODFLEET_LAUNCH_RATE": "40", "PODFLEET_MAX_PENDING_PODS": "70"})
    (spec,) = settings.clusters.configured
    assert (spec.name, spec.kubeconfig, spec.context, spec.namespaces, spec.launch_rate,
            spec.max_pending_pods) == ("default", "/etc/k", "prod", ("a", "b"), 40.0, 70)


def test_a_clusters_file_names_each_cluster_and_fills_what_it_leaves_out(
        tmp_path: Path) -> None:
    kubeconfig(tmp_path, "east", ("east", "other"))
    settings = settings_with(tmp_path, {"clusters": [
        {"name": "east", "kubeconfig": "east.kubeconfig", "context": "east",
         "namespaces": ["ml"], "launch_rate": 5, "max_pending_pods": 9,
         "labels": {"gpu": "true"}},
        {"name": "west", "in_cluster": True}]}, PODFLEET_LAUNCH_RATE="30")
    east, west = settings.clusters.configured
    assert east.kubeconfig == str(tmp_path / "east.kubeconfig")
    assert (east.context, east.namespaces, east.launch_rate, east.max_pending_pods,
            dict(east.labels)) == ("east", ("ml",), 5.0, 9, {"gpu": "true"})
    assert (west.in_cluster, west.launch_rate, west.max_pending_pods) == (True, 30.0, 500)
    assert settings.clusters.names == ("east", "west")


@pytest.mark.parametrize(("clusters", "expected"), [
    ([{"name": "a", "in_cluster": True}, {"name": "a", "in_cluster": True}],
     "cluster 'a' is configured twice"),
    ([{"name": "Bad_Name", "in_cluster": True}], "cluster #1: cluster name 'Bad_Name'"),
    ([{"name": "a", "kubeconfig": "missing.kubeconfig"}],
     "cluster 'a': kubeconfig '.*missing.kubeconfig' cannot be read"),
    ([{"name": "a", "kubeconfig": "k.kubeconfig", "context": "nope"}],
     "cluster 'a': kubeconfig .* has no context 'nope' \\(it has: ctx\\)"),
    ([{"name": "a", "in_cluster": True, "labels": {"gpu": "yes please"}}],
     "cluster 'a': labels: label gpu='yes please'"),
    ([{"name": "a", "in_cluster": True, "launch_rate": -1}],
     "cluster 'a': launch_rate must be a finite number ≥ 0"),
    ([{"name": "a", "in_cluster": True, "zone": "x"}], "cluster 'a': unknown field 'zone'"),
    ([], "must hold a non-empty list of clusters"),
])
def test_a_bad_clusters_file_stops_the_start_naming_the_cluster(
        tmp_path: Path, clusters: object, expected: str) -> None:
    kubeconfig(tmp_path, "k")
    with pytest.raises(SettingsError, match=expected):
        settings_with(tmp_path, clusters)


def test_queue_clusters_name_configured_clusters_of_known_queues(tmp_path: Path) -> None:
    two = [{"name": "a", "in_cluster": True}, {"name": "b", "in_cluster": True}]
    settings = settings_with(tmp_path, two, PODFLEET_QUEUE_RATES="gpu=5",
                             PODFLEET_QUEUE_CLUSTERS="gpu=b|a,default=a")
    assert settings.clusters.queue_clusters == {"gpu": ("b", "a"), "default": ("a",)}
    with pytest.raises(SettingsError, match="queue 'gpu': cluster 'c' is not configured"):
        settings_with(tmp_path, two, PODFLEET_QUEUE_RATES="gpu=5",
                      PODFLEET_QUEUE_CLUSTERS="gpu=c")
    with pytest.raises(SettingsError, match="unknown queue 'etl'"):
        settings_with(tmp_path, two, PODFLEET_QUEUE_CLUSTERS="etl=a")
    with pytest.raises(SettingsError, match="names a cluster twice"):
        settings_with(tmp_path, two, PODFLEET_QUEUE_CLUSTERS="default=a|a")
