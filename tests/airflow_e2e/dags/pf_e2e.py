"""DAGs the Airflow end-to-end tests run through podfleet."""

from __future__ import annotations

import os
import time
from datetime import timedelta

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import dag, task
from kubernetes.client import models as k8s

HERE = os.path.dirname(os.path.abspath(__file__))


@dag(dag_id="pf_pipeline", schedule=None, catchup=False, tags=["podfleet"])
def pf_pipeline():
    @task
    def numbers() -> list[int]:
        return [1, 2, 3]

    @task
    def double(n: int) -> int:
        return n * 2

    @task
    def total(values: list[int]) -> int:
        result = sum(values)
        assert result == 12, result
        print(f"total is {result}")
        return result

    bash = BashOperator(task_id="bash", bash_command="echo podfleet-bash-ran")
    total(double.expand(n=numbers())) >> bash


@dag(dag_id="pf_failing", schedule=None, catchup=False)
def pf_failing():
    @task(retries=0)
    def boom() -> None:
        raise RuntimeError("this task fails on purpose")

    boom()


@dag(dag_id="pf_override", schedule=None, catchup=False)
def pf_override():
    @task(executor_config={
        "pod_override": k8s.V1Pod(metadata=k8s.V1ObjectMeta(
            labels={"team": "data-eng"}, annotations={"owner": "alice"})),
        "pod_template_file": os.path.join(HERE, "template.yaml"),
    })
    def configured() -> str:
        time.sleep(8)  # long enough for the test to read the running pod
        return os.environ.get("FROM_TEMPLATE", "")

    configured()


@dag(dag_id="pf_slow", schedule=None, catchup=False)
def pf_slow():
    @task(retries=1, retry_delay=timedelta(seconds=1))
    def sleepy(dag_run=None, ti=None) -> None:
        """Try 1 works for a while (conf "seconds"); a retry finishes at once."""
        print(f"sleepy task started, try {ti.try_number}", flush=True)
        marker = os.path.join(os.environ["PF_MARKERS"], f"{dag_run.run_id}.started")
        with open(marker, "a") as f:
            f.write(f"{ti.try_number}\n")
        if ti.try_number > 1:
            return
        for i in range(int(dag_run.conf.get("seconds", 30))):
            print(f"still working {i}", flush=True)
            time.sleep(1)

    sleepy()


@dag(dag_id="pf_stuck", schedule=None, catchup=False)
def pf_stuck():
    @task(retries=0, executor_config={"pod_override": k8s.V1Pod(spec=k8s.V1PodSpec(
        containers=[], node_selector={"pool": "does-not-exist"}))})
    def never_scheduled() -> None:
        pass

    never_scheduled()


@dag(dag_id="pf_pull", schedule=None, catchup=False)
def pf_pull():
    # The simulator keeps this pod Pending with ErrImagePull: it fails before the task starts.
    @task(retries=0, executor_config={"pod_override": k8s.V1Pod(metadata=k8s.V1ObjectMeta(
        annotations={"sim.podfleet.io/image-pull-error": "true"}))})
    def unpullable() -> None:
        pass

    unpullable()


@dag(dag_id="pf_mixed", schedule=None, catchup=False)
def pf_mixed():
    @task(executor="LocalExecutor")
    def local() -> str:
        return "local"

    @task(executor="podfleet")
    def in_a_pod() -> str:
        return os.environ.get("PODFLEET_POD_NAME", "")

    local() >> in_a_pod()


@dag(dag_id="pf_sidecar", schedule=None, catchup=False)
def pf_sidecar():
    # Beside a sidecar, as a service mesh would add; the task container then exits 3, so the
    # pod fails and is kept (delete policy on_success) while the task itself succeeded.
    @task(retries=0, executor_config={"pod_override": k8s.V1Pod(spec=k8s.V1PodSpec(containers=[
        k8s.V1Container(name="base", command=["sh", "-c", '"$@"; exit 3', "keep-the-pod"]),
        k8s.V1Container(name="sidecar", image="busybox", command=["sleep", "3600"]),
    ]))})
    def beside_a_sidecar(dag_run=None) -> None:
        for i in range(int(dag_run.conf.get("seconds", 10))):
            print(f"beside a sidecar {i}", flush=True)
            time.sleep(1)

    beside_a_sidecar()


@dag(dag_id="pf_traced", schedule=None, catchup=False)
def pf_traced():
    @task
    def traced() -> str:
        return os.environ.get("TRACEPARENT", "")

    traced()


pf_pipeline()
pf_failing()
pf_override()
pf_slow()
pf_stuck()
pf_mixed()
pf_pull()
pf_sidecar()
pf_traced()
