"""The executor with two clusters: the session's simulator as ``default`` and a second
simulator as ``west`` (``PODFLEET_CLUSTERS_FILE``). Each task row records the cluster its
pod was placed in, and every pod operation goes there; a task is never decided by a pod in
another cluster.

Events are published as the launcher and watcher would (``publish``), pods created as the
launcher would (``create_pod``), in the cluster the test names.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from executor_support import (
    Clock,
    ExecutorFactory,
    create_pod,
    deleted,
    key,
    publish_seen,
    row_of,
    sent_batches,
    start_held_simulator,
)

from podfleet.cli import main
from podfleet.contracts.states import TaskState
from podfleet.executor import Executor, TaskSubmission
from podfleet.executor.cli.cluster_status import cluster_report, count_by_cluster
from podfleet.executor.db import TaskInstance, make_engine
from podfleet.executor.submission import InvalidSubmission
from podfleet.kube.client import KubeClient
from podfleet.local.ports import free_port
from podfleet.local.waiting import wait_for
from podfleet.simulator.server import RunningSimulator


@pytest.fixture(scope="session")
def west_simulator() -> Iterator[RunningSimulator]:
    with start_held_simulator() as sim:
        yield sim


@pytest.fixture
def west(west_simulator: RunningSimulator, namespace: str) -> Iterator[KubeClient]:
    """The second cluster's client, with this test's namespace made there too."""
    kube = KubeClient(west_simulator.api_client())
    kube.request("POST", "/api/v1/namespaces", body={"metadata": {"name": namespace}})
    yield kube
    kube.close()


@pytest.fixture
def two_clusters(environment: dict[str, str], west_simulator: RunningSimulator,
                 west: KubeClient, tmp_path: Path) -> dict[str, str]:
    """The fleet's settings with a clusters file: ``default`` (the session simulator, from
    PODFLEET_KUBECONFIG) and ``west`` (labelled region=west)."""
    kubeconfig = west_simulator.write_kubeconfig(tmp_path / "kubeconfig-west")
    clusters = tmp_path / "clusters.json"
    clusters.write_text(json.dumps([
        {"name": "default", "labels": {"region": "east"}},
        {"name": "west", "kubeconfig": str(kubeconfig), "labels": {"region": "west"}}]))
    environment["PODFLEET_CLUSTERS_FILE"] = str(clusters)
    return environment


def test_a_launch_is_sent_with_the_clusters_it_may_run_on(
        two_clusters: dict[str, str], make_executor: ExecutorFactory) -> None:
    # Given an executor of two clusters
    executor = make_executor()
    # When tasks name a cluster, select one by labels, or say nothing
    executor.submit(key("named"), ["true"], executor_config={"cluster": "west"})
    executor.submit(key("selected"), ["true"],
                    executor_config={"cluster_selector": {"region": "east"}})
    executor.submit(key("free"), ["true"])
    # Then each launch request carries the clusters its task may be placed on
    requests = {r.key.task_id: r for b in sent_batches(executor) for r in b.requests}
    assert requests["named"].clusters == ("west",)
    assert requests["selected"].clusters == ("default",)
    assert requests["free"].clusters == ("default", "west")


def test_an_unknown_cluster_is_refused_at_submit_naming_it_and_nothing_is_written(
        two_clusters: dict[str, str], make_executor: ExecutorFactory,
        database_url: str) -> None:
    # Given an executor of two clusters
    executor = make_executor()
    # When one task of a batch names a cluster nobody configured
    with pytest.raises(InvalidSubmission) as refused:
        executor.submit_many([
            dataclasses.replace(_submission("ok"), executor_config={"cluster": "west"}),
            dataclasses.replace(_submission("bad"), executor_config={"cluster": "mars"})])
    # Then the submit is refused in one line naming it, and no row was written
    assert "cluster 'mars' is not configured (configured: default, west)" in str(
        refused.value)
    engine = make_engine(database_url)
    with sa.orm.Session(engine) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(TaskInstance)) == 0
    engine.dispose()


def _submission(task: str) -> TaskSubmission:
    return TaskSubmission(key(task), ["true"])


def started_task(make_executor: ExecutorFactory, database_url: str,
                 **options: Any) -> tuple[Executor, TaskInstance]:
    """A started executor (made with ``options``) and the row of the one task it submitted."""
    executor = make_executor(**options)
    executor.start()
    executor.submit(key(), ["true"])
    return executor, row_of(database_url, key())


def test_the_row_records_the_cluster_and_revoke_deletes_the_pod_there(
        two_clusters: dict[str, str], make_executor: ExecutorFactory, kube: KubeClient,
        west: KubeClient, namespace: str, database_url: str, redis_url: str) -> None:
    # Given a task whose pod the launcher placed in west (a pod of the same name exists
    # in default too, someone else's)
    executor, row = started_task(make_executor, database_url)
    placed = create_pod(west, namespace, row)
    bystander = create_pod(kube, namespace, row)
    publish_seen(redis_url, row, TaskState.LAUNCHED, "west", placed)
    executor.sync()
    # Then its row records west
    assert row_of(database_url, key()).cluster == "west"
    # When the task is revoked
    assert executor.revoke(key())
    # Then its pod in west is deleted, and the other cluster's pod is left alone
    name = placed["metadata"]["name"]
    assert deleted(west, namespace, name)
    assert kube.get_pod(namespace, bystander["metadata"]["name"]) is not None
    assert not kube.get_pod(namespace, name)["metadata"].get("deletionTimestamp")


def test_an_event_from_another_cluster_than_the_rows_does_not_decide_the_task(
        two_clusters: dict[str, str], make_executor: ExecutorFactory, kube: KubeClient,
        west: KubeClient, namespace: str, database_url: str, redis_url: str) -> None:
    # Given a task running in west
    executor, row = started_task(make_executor, database_url)
    placed = create_pod(west, namespace, row)
    publish_seen(redis_url, row, TaskState.RUNNING, "west", placed)
    executor.sync()
    # When a pod of the same launch shows up running in default and reports SUCCESS
    copy = create_pod(kube, namespace, row)
    publish_seen(redis_url, row, TaskState.SUCCESS, "default", copy)
    executor.sync()
    # Then the task still runs (in west), and the copy in default is deleted
    assert row_of(database_url, key()).task_state is TaskState.RUNNING
    assert deleted(kube, namespace, copy["metadata"]["name"])
    assert not deleted(west, namespace, placed["metadata"]["name"])


def test_reconciliation_completes_a_task_from_its_own_clusters_pod(
        two_clusters: dict[str, str], make_executor: ExecutorFactory, west: KubeClient,
        namespace: str, database_url: str, redis_url: str) -> None:
    # Given a task launched in west whose pod finished while no executor ran
    first, row = started_task(make_executor, database_url, executor_id="first")
    placed = create_pod(west, namespace, row)
    publish_seen(redis_url, row, TaskState.LAUNCHED, "west", placed)
    first.sync()
    _finish(west, namespace, placed["metadata"]["name"])
    first.terminate()
    # When another executor starts (and adopts it), reconciling against both clusters
    second = make_executor(executor_id="second")
    second.start()
    # Then the task completes from west's pod
    assert row_of(database_url, key()).task_state is TaskState.SUCCESS


def _finish(kube: KubeClient, namespace: str, name: str) -> None:
    """Mark the pod Succeeded through the status subresource, as a kubelet would, once the
    simulated kubelet has started it (a start landing after the patch would undo it)."""
    from podfleet.kube.client import MERGE_PATCH

    wait_for(lambda: ((kube.get_pod(namespace, name) or {}).get("status") or {})
             .get("phase") == "Running", 10, f"pod {name} running")

    stamp = "2026-12-07T00:00:00Z"
    kube.request("PATCH", kube.pods_path(namespace, name) + "/status", body={"status": {
        "phase": "Succeeded", "containerStatuses": [{
            "name": "base", "ready": False, "restartCount": 0, "image": "busybox",
            "imageID": "", "started": False, "state": {"terminated": {
                "exitCode": 0, "reason": "Completed", "startedAt": stamp,
                "finishedAt": stamp}}}]}}, content_type=MERGE_PATCH)


def test_a_cluster_removed_from_the_configuration_is_reported_not_dropped(
        two_clusters: dict[str, str], make_executor: ExecutorFactory, west: KubeClient,
        namespace: str, database_url: str, redis_url: str, tmp_path: Path,
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    # Given a task running in west
    first, row = started_task(make_executor, database_url, executor_id="first")
    placed = create_pod(west, namespace, row)
    publish_seen(redis_url, row, TaskState.RUNNING, "west", placed)
    first.sync()
    first.terminate()
    # When west is removed from the configuration and an executor starts
    clusters = tmp_path / "clusters.json"
    clusters.write_text(json.dumps([{"name": "default"}]))
    with caplog.at_level(logging.ERROR, logger="podfleet.executor"):
        second = make_executor(executor_id="second")
        second.start()
    # Then the task is left running, not failed or requeued, and the log names west
    assert row_of(database_url, key()).task_state is TaskState.RUNNING
    assert any("cluster west, which is no longer configured" in r.getMessage()
               for r in caplog.records)
    # and podfleet status lists west as not configured, with its orphaned task
    engine = make_engine(database_url)
    counts = count_by_cluster(engine, dag_id=None)
    engine.dispose()
    report = cluster_report(counts, second.settings.clusters.configured, None, "unused",
                            probe_clusters=False)
    orphan = [c for c in report if c["cluster"] == "west"]
    assert orphan and not orphan[0]["configured"] and orphan[0]["running"] == 1
    assert "1 unfinished task(s) orphaned" in orphan[0]["error"]
    # and so does the podfleet status command, in its text
    for name, value in two_clusters.items():
        monkeypatch.setenv(name, value)
    assert main(["status", "--no-probe"]) == 0
    text = capsys.readouterr().out
    assert re.search(r"^  west\s+0\s+1  -", text, re.MULTILINE), text
    assert "west: not configured: 1 unfinished task(s) orphaned there" in text


def test_status_says_which_cluster_answers_and_who_holds_its_watcher_lease(
        two_clusters: dict[str, str], make_executor: ExecutorFactory, redis_url: str,
        tmp_path: Path) -> None:
    # Given two clusters, one of which no longer answers (its kubeconfig points at a port
    # nobody listens on)
    executor = make_executor()
    spec = executor.settings.clusters.named("west")
    dead = tmp_path / "kubeconfig-dead"
    text = Path(str(spec.kubeconfig)).read_text()
    dead.write_text(re.sub(r"server: https?://[^\s]+",
                           f"server: http://127.0.0.1:{free_port()}", text))
    configured = (executor.settings.clusters.named("default"),
                  dataclasses.replace(spec, kubeconfig=str(dead)))
    client = redis.Redis.from_url(redis_url)
    try:
        # When status reports on the clusters
        report = cluster_report({}, configured, client, executor.settings.redis.prefix)
    finally:
        client.close()
    # Then default answers, west does not (and says why), and neither has a lease holder
    by_name = {c["cluster"]: c for c in report}
    assert by_name["default"]["reachable"] is True
    assert by_name["west"]["reachable"] is False and by_name["west"]["error"]
    assert by_name["default"]["watcher"] is None and by_name["west"]["watcher"] is None


def test_a_teams_executor_places_tasks_only_on_its_own_clusters(
        two_clusters: dict[str, str], make_executor: ExecutorFactory) -> None:
    # Given a team's executor whose clusters are west only (PODFLEET_EXECUTOR_CLUSTERS)
    executor = make_executor(executor_clusters="west")
    # When a task says nothing about its cluster
    executor.submit(key("free"), ["true"])
    # Then its launch may go to west only
    requests = [r for b in sent_batches(executor) for r in b.requests]
    assert [r.clusters for r in requests] == [("west",)]
    # And a task naming the other team's cluster is refused, naming both
    with pytest.raises(InvalidSubmission) as refused:
        executor.submit(key("other"), ["true"], executor_config={"cluster": "default"})
    assert ("cluster(s) default are not this executor's (PODFLEET_EXECUTOR_CLUSTERS: west)"
            in str(refused.value))


def test_a_waiting_task_whose_cluster_was_removed_is_held_with_its_reason_then_failed(
        two_clusters: dict[str, str], make_executor: ExecutorFactory, database_url: str,
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Given parallelism 1: a task sent, and one for west waiting for the slot
    clock = Clock()
    limits = {"clock": clock, "executor_id": "one", "batch_size": 1,
              "queued_timeout_seconds": 600, "queued_timeout_action": "fail",
              "heartbeat_timeout_seconds": 10_000}
    first = make_executor(parallelism=1, **limits)
    first.start()
    first.submit_many([_submission("sent"),
                       dataclasses.replace(_submission("west"),
                                           executor_config={"cluster": "west"})])
    assert row_of(database_url, key("west")).enqueued_at is None
    first.terminate()
    # When west is removed from the configuration and the executor comes back with a slot
    (tmp_path / "clusters.json").write_text(json.dumps([{"name": "default"}]))
    with caplog.at_level(logging.ERROR, logger="podfleet.executor"):
        second = make_executor(parallelism=2, **limits)
        second.start()
        second.sync()
    # Then the task is not sent but kept, its reason naming west, and the log says so
    held = row_of(database_url, key("west"))
    assert held.task_state is TaskState.QUEUED
    assert "cannot be placed: cluster 'west' is not configured" in (held.waiting_reason or "")
    assert any("cluster 'west' is not configured" in r.getMessage() for r in caplog.records)
    assert {r.key.task_id for b in sent_batches(second) for r in b.requests} == {"sent"}
    # And once the stuck-QUEUED timeout passes it fails with that reason, not silently
    clock.advance(601)
    second.sync()
    failed = row_of(database_url, key("west"))
    assert failed.task_state is TaskState.FAILED
    assert "cluster 'west' is not configured" in (failed.reason or "")
