"""Moving off the KubernetesExecutor is one line: Airflow started with a configuration written
for the KubernetesExecutor, with only ``[core] executor`` changed, runs its tasks in pods built
from that configuration's template and image, in its namespace, kept per its delete policy.

The workers read the same airflow.cfg (``podfleet worker --airflow-config``); podfleet's own
pieces (Redis, its database, the signing key) are the only ``PODFLEET_*`` variables given.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow_support import BIN, SIGNING_KEY, AirflowStack, wait_for

from podfleet.kube.client import KubeClient
from podfleet.local.fleet import LocalFleet
from podfleet.local.postgres import ScratchDatabase
from podfleet.local.redis_server import RedisServer
from podfleet.simulator.server import RunningSimulator

pytestmark = pytest.mark.airflow

DAGS = Path(__file__).resolve().parent / "ke_dags"
NAMESPACE = "airflow-tasks"
IMAGE = "registry.example/airflow-dags:ke-1"

TEMPLATE = """\
apiVersion: v1
kind: Pod
metadata:
  labels:
    from-ke-template: "yes"
  annotations:
    team: data-eng
spec:
  containers:
    - name: base
      env:
        - name: FROM_KE_TEMPLATE
          value: ke-template-env
"""

AIRFLOW_CFG = """\
[core]
executor = podfleet.airflow.PodFleetExecutor

[kubernetes_executor]
worker_container_repository = registry.example/airflow-dags
worker_container_tag = ke-1
pod_template_file = {template}
namespace = {namespace}
delete_worker_pods = False
worker_pods_creation_batch_size = 16
"""


class KubernetesExecutorConfigStack(AirflowStack):
    """The shared stack's processes, with ``[core] executor`` in airflow.cfg rather than in
    the environment, and workers that read the same file."""

    def start_worker(self, name: str = "worker") -> subprocess.Popen[bytes]:
        return self.start(name, [str(BIN / "podfleet"), "worker", "--processes", "1",
                                 "--threads", "4", "--airflow-config",
                                 str(self.home / "airflow.cfg")])


@pytest.fixture(scope="module")
def ke_stack(tmp_path_factory: pytest.TempPathFactory, postgres_database_url: str,
             redis_server: RedisServer) -> Iterator[tuple[AirflowStack, RunningSimulator]]:
    home = tmp_path_factory.mktemp("airflow-ke-home")
    template = home / "pod-template.yaml"
    template.write_text(TEMPLATE)
    (home / "airflow.cfg").write_text(AIRFLOW_CFG.format(template=template,
                                                         namespace=NAMESPACE))
    with ScratchDatabase(postgres_database_url, prefix="airflow_ke") as airflow_db, \
            ScratchDatabase(postgres_database_url, prefix="podfleet_ke") as podfleet_db:
        # podfleet's own pieces only: Redis, its database, the signing key, the cluster.
        fleet = LocalFleet(
            workdir=home, kubeconfig=home / "kubeconfig", redis_url=redis_server.url,
            database_url=podfleet_db.url, signing_key=SIGNING_KEY,
            redis_prefix=f"afke-{uuid.uuid4().hex[:8]}", env={
                "PODFLEET_HEARTBEAT_SECONDS": "1",
                "PODFLEET_WATCHER_LEASE_SECONDS": "3",
                "PODFLEET_LOG_ARCHIVE": str(home / "pod-logs"),
            }).start()
        stack = KubernetesExecutorConfigStack(home=home, dags=DAGS,
                                              database_url=airflow_db.url,
                                              podfleet_env=fleet.env)
        del stack.env["AIRFLOW__CORE__EXECUTOR"]    # the one line is in airflow.cfg
        assert not any(k.startswith("AIRFLOW__KUBERNETES_EXECUTOR") for k in stack.env)
        sim = stack.start_simulator(fleet.kubeconfig, nodes=2, node_pods=100,
                                    namespaces=[NAMESPACE])
        try:
            stack.boot()
            yield stack, sim
        finally:
            stack.stop()
            sim.stop()
            fleet.close()


def _pods(sim: RunningSimulator, namespace: str, selector: str) -> list[dict[str, Any]]:
    kube = KubeClient(sim.api_client())
    try:
        return kube.list_pods(namespace, label_selector=selector).items
    finally:
        kube.close()


@pytest.mark.slow
def test_a_kubernetes_executor_config_runs_tasks_as_it_said(
        ke_stack: tuple[AirflowStack, RunningSimulator]) -> None:
    stack, sim = ke_stack
    run_id = stack.trigger("pf_ke")
    assert stack.wait_for_run("pf_ke", run_id) == "success"
    xcom = stack.get(f"/dags/pf_ke/dagRuns/{run_id}/taskInstances/from_template"
                     "/xcomEntries/return_value")
    assert xcom["value"] == "ke-template-env"                 # the template's container env

    def kept_pod() -> dict[str, Any] | None:
        pods = [p for p in _pods(sim, NAMESPACE, "dag_id=pf_ke")
                if (p.get("status") or {}).get("phase") == "Succeeded"]
        return pods[0] if pods else None
    # delete_worker_pods = False: the finished pod stays, in the configured namespace.
    pod = wait_for(kept_pod, 60, "the finished pf_ke pod in its namespace")
    assert pod["metadata"]["labels"]["from-ke-template"] == "yes"
    assert pod["metadata"]["annotations"]["team"] == "data-eng"
    assert pod["spec"]["containers"][0]["image"] == IMAGE
    assert _pods(sim, "default", "dag_id=pf_ke") == []


@pytest.mark.slow
def test_get_value_shows_what_the_executor_uses_and_ignored_options_are_named(
        ke_stack: tuple[AirflowStack, RunningSimulator]) -> None:
    stack, _ = ke_stack
    assert stack.run("config", "get-value", "podfleet", "worker_image").stdout.strip() == IMAGE
    assert stack.run("config", "get-value", "podfleet", "delete_policy").stdout.strip() \
        == "never"
    assert "worker_pods_creation_batch_size" in stack.log("scheduler")
