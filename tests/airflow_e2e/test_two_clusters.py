"""Airflow on a fleet of two clusters: a task whose ``executor_config`` names a cluster runs
its pod there, and nowhere else. Two simulators in local mode are the clusters ``default``
and ``west`` of one clusters file, which the scheduler's executor and the workers share."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from airflow_support import SIGNING_KEY, AirflowStack, wait_for

from podfleet.contracts.naming import DAG_ID_LABEL, TASK_ID_LABEL
from podfleet.executor.db import TaskInstance, make_engine
from podfleet.kube.client import KubeClient
from podfleet.local.fleet import LocalFleet
from podfleet.local.postgres import ScratchDatabase
from podfleet.local.redis_server import RedisServer
from podfleet.simulator.server import RunningSimulator

pytestmark = pytest.mark.airflow

DAGS = Path(__file__).resolve().parent / "cluster_dags"


class TwoClusters:
    """The stack, each cluster's simulator by name, and podfleet's database URL."""

    def __init__(self, stack: AirflowStack, sims: dict[str, RunningSimulator],
                 database_url: str) -> None:
        self.stack = stack
        self.sims = sims
        self.database_url = database_url


@pytest.fixture(scope="module")
def two_cluster_stack(tmp_path_factory: pytest.TempPathFactory, postgres_database_url: str,
                      redis_server: RedisServer) -> Iterator[TwoClusters]:
    home = tmp_path_factory.mktemp("airflow-clusters-home")
    with ScratchDatabase(postgres_database_url, prefix="airflow_cl") as airflow_db, \
            ScratchDatabase(postgres_database_url, prefix="podfleet_cl") as podfleet_db:
        fleet = LocalFleet(
            workdir=home, kubeconfig=home / "kubeconfig", redis_url=redis_server.url,
            database_url=podfleet_db.url, signing_key=SIGNING_KEY,
            redis_prefix=f"afcl-{uuid.uuid4().hex[:8]}", env={
                "PODFLEET_HEARTBEAT_SECONDS": "1",
                "PODFLEET_WATCHER_LEASE_SECONDS": "3",
                "PODFLEET_LOG_ARCHIVE": str(home / "pod-logs"),
                # Finished pods stay, so the test can see in which cluster each ran.
                "PODFLEET_DELETE_POLICY": "never",
            }).start()
        clusters = home / "clusters.json"
        clusters.write_text(json.dumps([
            {"name": "default", "kubeconfig": str(home / "kubeconfig")},
            {"name": "west", "kubeconfig": str(home / "kubeconfig-west"),
             "labels": {"region": "west"}}]))
        stack = AirflowStack(home=home, dags=DAGS, database_url=airflow_db.url,
                             podfleet_env={**fleet.env,
                                           "PODFLEET_CLUSTERS_FILE": str(clusters)})
        sims = {"default": stack.start_simulator(home / "kubeconfig", nodes=2, node_pods=50)}
        try:
            sims["west"] = stack.start_simulator(home / "kubeconfig-west", nodes=2,
                                                 node_pods=50)
            stack.boot()
            yield TwoClusters(stack, sims, podfleet_db.url)
        finally:
            stack.stop()
            for sim in sims.values():
                sim.stop()
            fleet.close()


def _pods(sim: RunningSimulator, selector: str) -> list[dict[str, Any]]:
    kube = KubeClient(sim.api_client())
    try:
        return list(kube.list_pods("default", label_selector=selector).items)
    finally:
        kube.close()


def _finished(pods: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """``pods`` once none of them is still Pending or Running."""
    phases = {(p.get("status") or {}).get("phase") for p in pods}
    return pods if pods and not phases & {"Pending", "Running", None} else None


def _clusters_of_rows(database_url: str) -> dict[str, str | None]:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return {task_id: cluster for task_id, cluster in conn.execute(
                sa.select(TaskInstance.task_id, TaskInstance.cluster)
                .where(TaskInstance.dag_id == "pf_clusters"))}
    finally:
        engine.dispose()


@pytest.mark.slow
def test_a_task_naming_a_cluster_runs_its_pod_there_and_nowhere_else(
        two_cluster_stack: TwoClusters) -> None:
    stack, sims = two_cluster_stack.stack, two_cluster_stack.sims
    # When a DAG runs whose tasks name west and default in their executor_config
    run_id = stack.trigger("pf_clusters")
    # Then the run succeeds
    assert stack.wait_for_run("pf_clusters", run_id) == "success"
    # And each task's pod ran in the cluster it named, and none in the other
    for task_id, here, there in (("on_west", "west", "default"),
                                 ("on_default", "default", "west")):
        selector = f"{DAG_ID_LABEL}=pf_clusters,{TASK_ID_LABEL}={task_id}"
        # (the task reports its end to Airflow before its process, and so its pod, ends)
        pods = wait_for(lambda s=selector, c=here: _finished(_pods(sims[c], s)), 60,
                        f"{task_id}'s pod in {here} to finish")
        assert [p["status"]["phase"] for p in pods] == ["Succeeded"]
        assert _pods(sims[there], selector) == []
    # And podfleet's rows record where each ran
    assert _clusters_of_rows(two_cluster_stack.database_url) == {
        "on_west": "west", "on_default": "default"}
