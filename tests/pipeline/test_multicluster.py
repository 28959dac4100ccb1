"""One fleet, three clusters: each a simulator process of its own, one worker pool and one
executor placing tasks among them (issue: one fleet, many clusters).

The outcome is read where a user reads it: the executor's event buffer, the metadata DB's
``cluster`` column, and each cluster's own pod list; nothing inside a worker is reached into.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from podfleet.contracts.keys import TaskKey
from podfleet.contracts.naming import LAUNCH_ID_LABEL, MANAGED_SELECTOR
from podfleet.contracts.states import TaskState
from podfleet.executor import Executor, TaskSubmission
from podfleet.executor.db import TaskInstance
from podfleet.executor.submission import InvalidSubmission
from podfleet.kube.client import KubeClient
from podfleet.local.fleet import LocalCluster, LocalFleet
from podfleet.local.waiting import wait_for
from podfleet.simulator.cluster import fate
from podfleet.simulator.cluster.config import ClusterConfig
from podfleet.simulator.config import SimulatorConfig

NAMESPACE = "default"


def _simulator() -> SimulatorConfig:
    return SimulatorConfig(
        default_termination_grace_period_s=0,
        cluster=ClusterConfig(nodes=5, node_pods=500, schedule_delay_s=0.01,
                              container_start_delay_s=0.05, default_run_time_s=0.2,
                              termination_delay_s=0.05))


CLUSTERS = [
    LocalCluster("east", labels={"region": "east"}, simulator=_simulator()),
    LocalCluster("west", labels={"region": "west"}, simulator=_simulator()),
    LocalCluster("gpu", labels={"region": "east", "gpu": "true"}, simulator=_simulator()),
]


class World:
    """A three-cluster fleet, its executor, and readers of each cluster's pods."""

    def __init__(self, tmp_path: Path, **env: str) -> None:
        self.fleet = LocalFleet(
            workdir=tmp_path, clusters=CLUSTERS, namespace=NAMESPACE,
            redis_prefix=f"mc-{uuid.uuid4().hex[:6]}", env={
                "PODFLEET_PARALLELISM": "0",
                "PODFLEET_BATCH_SIZE": "20",
                "PODFLEET_LAUNCH_RATE": "0",
                "PODFLEET_LAUNCH_BACKOFF_SECONDS": "0.05",
                "PODFLEET_LAUNCH_BACKOFF_MAX_SECONDS": "0.5",
                "PODFLEET_KUBE_TIMEOUT_SECONDS": "2",
                "PODFLEET_DELETE_POLICY": "never",
                "PODFLEET_WATCHER_LEASE_SECONDS": "2",
                "PODFLEET_BROKER_HEARTBEAT_TIMEOUT_SECONDS": "3",
                "PODFLEET_HEARTBEAT_SECONDS": "0.5",
                "PODFLEET_QUEUED_TIMEOUT_SECONDS": "0",
                "PODFLEET_RESYNC_SECONDS": "4",
                **env,
            }).start()
        self.executor: Executor | None = None
        self.finished: dict[TaskKey, list[TaskState]] = {}

    def start(self, *, threads: int = 8) -> Executor:
        worker = self.fleet.workers.start(1, threads)
        self.fleet.workers.wait_for_watcher(worker, timeout=60)
        self.executor = Executor(self.fleet.settings({"PODFLEET_EXECUTOR_ID": "mc"}))
        self.executor.start()
        return self.executor

    def sync(self) -> None:
        assert self.executor is not None
        self.executor.sync()
        for key, (state, _info) in self.executor.get_event_buffer().items():
            if state.is_terminal:
                self.finished.setdefault(key, []).append(state)

    def run_until_finished(self, keys: set[TaskKey], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not keys <= set(self.finished):
            self.sync()
            self.fleet.workers.check_alive()
            if time.monotonic() > deadline:
                missing = keys - set(self.finished)
                raise AssertionError(
                    f"{len(missing)} task(s) unfinished after {timeout}s; DB: "
                    f"{Counter((r.cluster, r.state) for r in self.rows())}\n"
                    f"{self.fleet.workers.logs()[-3000:]}")
            time.sleep(0.05)

    def rows(self) -> list[TaskInstance]:
        assert self.executor is not None
        with sa.orm.Session(self.executor.engine) as session:
            return list(session.scalars(sa.select(TaskInstance)))

    def pods(self, cluster: str) -> list[dict[str, Any]]:
        kube = KubeClient(self.fleet.simulators[cluster].api_client(), timeout_seconds=5)
        try:
            return kube.list_pods(NAMESPACE, label_selector=MANAGED_SELECTOR).items
        finally:
            kube.close()

    def launches_by_cluster(self) -> dict[str, Counter[str]]:
        """Each cluster's pods counted by launch id."""
        return {name: Counter(p["metadata"]["labels"][LAUNCH_ID_LABEL]
                              for p in self.pods(name))
                for name in self.fleet.simulators}

    def close(self) -> None:
        if self.executor is not None:
            self.executor.terminate()
        self.fleet.close()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    made = World(tmp_path)
    yield made
    made.close()


def _task(n: int, config: dict[str, Any] | None = None, run: str = "r1",
          duration: str = "0.2") -> TaskSubmission:
    return TaskSubmission(TaskKey("multi", f"t{n}", run, -1, 1), ["true"],
                          executor_config={**(config or {}),
                                           "annotations": {fate.DURATION: duration}})


def test_tasks_run_on_the_cluster_they_name_or_select_and_nowhere_else(world: World) -> None:
    # Given a fleet of three clusters (east, west, gpu: only gpu is labelled gpu=true)
    executor = world.start()
    # When tasks name west, select gpu=true by labels, name gpu by pod_override's
    # annotation, or say nothing
    named = [_task(n, {"cluster": "west"}) for n in range(4)]
    selected = [_task(n, {"cluster_selector": {"gpu": "true"}}) for n in range(4, 8)]
    annotated = [_task(n, {"pod_override": {"metadata": {
        "annotations": {"podfleet.io/cluster": "gpu"}}}}) for n in range(8, 10)]
    free = [_task(n) for n in range(10, 22)]
    executor.submit_many(named + selected + annotated + free)
    keys = {TaskKey.coerce(s.key) for s in named + selected + annotated + free}
    world.run_until_finished(keys, timeout=90)
    # Then every task succeeded once, its row records the cluster it asked for,
    assert all(states == [TaskState.SUCCESS] for states in world.finished.values())
    rows = {row.key: row for row in world.rows()}
    assert {rows[TaskKey.coerce(s.key)].cluster for s in named} == {"west"}
    assert {rows[TaskKey.coerce(s.key)].cluster for s in selected + annotated} == {"gpu"}
    assert {rows[TaskKey.coerce(s.key)].cluster for s in free} <= {"east", "west", "gpu"}
    # and each launch's pod exists in that cluster, and in no other
    by_cluster = world.launches_by_cluster()
    for row in rows.values():
        where = [name for name, launches in by_cluster.items() if launches[row.launch_id]]
        assert where == [row.cluster], (row.key, where)
        assert by_cluster[row.cluster][row.launch_id] == 1


def test_an_unknown_cluster_or_a_selector_nothing_matches_is_refused_at_submit_naming_it(
        world: World) -> None:
    # Given the three-cluster fleet's executor
    executor = Executor(world.fleet.settings({"PODFLEET_EXECUTOR_ID": "refuse"}))
    try:
        # When a batch holds a task naming a cluster nobody configured
        with pytest.raises(InvalidSubmission) as unknown:
            executor.submit_many([_task(1), _task(2, {"cluster": "mars"})])
        # or one selecting labels no cluster has
        with pytest.raises(InvalidSubmission) as unmatched:
            executor.submit_many([_task(3, {"cluster_selector": {"gpu": "false"}})])
        # Then each is one line naming it, and nothing was written
        assert "cluster 'mars' is not configured" in str(unknown.value)
        assert "east, west, gpu" in str(unknown.value)
        assert "cluster_selector gpu=false" in str(unmatched.value)
        with sa.orm.Session(executor.engine) as session:
            assert session.scalar(sa.select(sa.func.count()).select_from(TaskInstance)) == 0
    finally:
        executor.terminate()


@pytest.mark.slow
def test_a_cluster_killed_mid_run_loses_no_task_and_runs_none_twice(world: World) -> None:
    # Given tasks spread over the three clusters, running for 2 s
    executor = world.start(threads=12)
    submissions = [_task(n, duration="2") for n in range(60)]
    executor.submit_many(submissions)
    keys = {TaskKey.coerce(s.key) for s in submissions}

    def placed_on_west() -> bool:
        world.sync()
        return any(r.cluster == "west" and r.state == TaskState.RUNNING.value
                   for r in world.rows())

    wait_for(placed_on_west, 60, "a task running on west")
    # When west's API server is SIGKILLed mid-run (its pods are lost with it)
    world.fleet.kill_cluster("west")
    # and more work arrives meanwhile, free to run anywhere
    late = [_task(n, run="r2", duration="0.5") for n in range(30)]
    executor.submit_many(late)
    keys |= {TaskKey.coerce(s.key) for s in late}
    # Then the other clusters' tasks finish while west is gone
    others = {r.key for r in world.rows() if r.cluster in ("east", "gpu")}
    world.run_until_finished(others, timeout=90)
    # When west comes back (empty, as a rebuilt control plane)
    world.fleet.restart_cluster("west")
    # Then every task settles: none lost, each reported finished exactly once
    world.run_until_finished(keys, timeout=180)
    assert all(len(states) == 1 for states in world.finished.values()), world.finished
    # and no launch has a pod in two clusters
    by_cluster = world.launches_by_cluster()
    seen: Counter[str] = Counter()
    for launches in by_cluster.values():
        seen.update(set(launches))
    assert not [launch for launch, n in seen.items() if n > 1]
    assert all(n == 1 for launches in by_cluster.values() for n in launches.values())
