"""``podfleet submit --cluster`` and a bad clusters file, run through the CLI's main on the
embedded SQLite DB and real Redis: a cluster is checked at submit, before any row is written,
and the one that is accepted travels with the task to its launch."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from executor_support import SIGNING_KEY, rows, sent_batches

from podfleet.cli import main
from podfleet.executor import Executor
from podfleet.settings import Settings

DB_FLAGS = ("--dag-id", "etl", "--task-id", "load", "--run-id", "r1")


def write_kubeconfig(folder: Path, name: str, context: str = "ctx") -> Path:
    """A kubeconfig with one context; nothing contacts its server at submit."""
    path = folder / f"{name}.kubeconfig"
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": context,
        "clusters": [{"name": context, "cluster": {"server": "http://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": "u"}}]}))
    return path


@pytest.fixture
def two_clusters(tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch,
                 capsys: pytest.CaptureFixture[str]) -> Path:
    """A migrated SQLite DB and a clusters file of ``east`` and ``west``; returns the file."""
    monkeypatch.setenv("PODFLEET_DATABASE_URL", f"sqlite:///{tmp_path}/podfleet.sqlite")
    monkeypatch.setenv("PODFLEET_REDIS_URL", redis_url)
    monkeypatch.setenv("PODFLEET_SIGNING_KEY", SIGNING_KEY)
    clusters = tmp_path / "clusters.json"
    clusters.write_text(json.dumps([
        {"name": "east", "kubeconfig": str(write_kubeconfig(tmp_path, "east"))},
        {"name": "west", "kubeconfig": str(write_kubeconfig(tmp_path, "west"))}]))
    monkeypatch.setenv("PODFLEET_CLUSTERS_FILE", str(clusters))
    assert main(["db", "upgrade"]) == 0
    capsys.readouterr()
    return clusters


def database_url() -> str:
    return os.environ["PODFLEET_DATABASE_URL"]


def test_submit_to_an_unknown_cluster_is_one_line_naming_it_and_writes_nothing(
        two_clusters: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # When a task is submitted to a cluster the fleet does not have
    assert main(["submit", *DB_FLAGS, "--cluster", "mars", "--", "true"]) == 2
    # Then the CLI says so in one line naming it and the configured ones
    err = capsys.readouterr().err
    assert err.startswith("podfleet submit: ")
    assert "cluster 'mars' is not configured (configured: east, west)" in err
    assert err.count("\n") == 1
    # And no row was written
    assert rows(database_url()) == []


def test_submit_to_a_known_cluster_records_it_on_the_task_and_its_launch(
        two_clusters: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # When a task is submitted to west
    assert main(["submit", *DB_FLAGS, "--cluster", "west", "--", "true"]) == 0
    assert "submitted 1 task(s)" in capsys.readouterr().out
    # Then its row asks for west
    (row,) = rows(database_url())
    assert row.executor_config == {"cluster": "west"}
    # And its signed launch request may be placed on west only
    reader = Executor(Settings.from_env())
    try:
        requests = [r for batch in sent_batches(reader) for r in batch.requests]
    finally:
        reader.terminate()
    assert [(r.key.task_id, r.clusters) for r in requests] == [("load", ("west",))]


def test_submit_selecting_labels_no_cluster_has_is_one_line_naming_the_selector(
        two_clusters: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # When a task asks for a cluster by labels that neither east nor west has
    assert main(["submit", *DB_FLAGS, "--executor-config",
                 '{"cluster_selector": {"gpu": "true"}}', "--", "true"]) == 2
    # Then the CLI says so in one line naming the selector, and writes nothing
    err = capsys.readouterr().err
    assert err.startswith("podfleet submit: ") and err.count("\n") == 1, err
    assert "cluster_selector gpu=true" in err
    assert rows(database_url()) == []


def test_cluster_and_executor_config_naming_another_cluster_are_refused(
        two_clusters: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["submit", *DB_FLAGS, "--cluster", "west", "--executor-config",
                 '{"cluster": "east"}', "--", "true"]) == 2
    assert "--cluster 'west' and executor_config's cluster 'east' disagree" in (
        capsys.readouterr().err)
    assert rows(database_url()) == []


@pytest.mark.parametrize(("clusters", "expected"), [
    ([{"name": "east"}, {"name": "east"}], "cluster 'east' is configured twice"),
    ([{"name": "east", "kubeconfig": "missing.kubeconfig"}],
     "cluster 'east': kubeconfig '.*missing.kubeconfig' cannot be read"),
    ([{"name": "east", "kubeconfig": "east.kubeconfig", "context": "nope"}],
     r"cluster 'east': kubeconfig .* has no context 'nope' \(it has: ctx\)"),
], ids=["same-name-twice", "unreadable-kubeconfig", "missing-context"])
def test_a_bad_clusters_file_refuses_the_submit_in_one_line_naming_the_cluster(
        two_clusters: Path, tmp_path: Path, clusters: list[dict[str, str]], expected: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    # Given a clusters file with a fault in one cluster (east's kubeconfig is readable)
    for cluster in clusters:
        cluster.setdefault("kubeconfig", "east.kubeconfig")
    two_clusters.write_text(json.dumps(clusters))
    # When a task is submitted
    assert main(["submit", *DB_FLAGS, "--", "true"]) == 2
    # Then the CLI stops in one line naming the cluster and its fault, and writes nothing
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert re.search(expected, err), err
    assert rows(database_url()) == []


def test_a_worker_pool_with_a_cluster_twice_is_refused_at_start_naming_it(
        two_clusters: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a clusters file that lists west twice
    kubeconfig = str(two_clusters.parent / "west.kubeconfig")
    two_clusters.write_text(json.dumps([{"name": "west", "kubeconfig": kubeconfig},
                                        {"name": "west", "kubeconfig": kubeconfig}]))
    # When a worker pool starts, Then it stops at once in one line naming west
    assert main(["worker"]) == 2
    err = capsys.readouterr().err
    assert "cluster 'west' is configured twice" in err and err.count("\n") == 1, err
