"""DAGs the Airflow end-to-end tests run through podfleet."""

from __future__ import annotations

import os
import time

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
        return os.environ.get("FROM_TEMPLATE", "")

    configured()


@dag(dag_id="pf_slow", schedule=None, catchup=False)
def pf_slow():
    @task(retries=1, retry_delay=1)
    def sleepy() -> None:
        print("sleepy task started", flush=True)
        marker = os.path.join(os.environ["PF_MARKERS"], "sleepy-started")
        with open(marker, "a") as f:
            f.write("x\n")
        for i in range(int(os.environ.get("PF_SLEEP", "30"))):
            print(f"still working {i}", flush=True)
            time.sleep(1)

    sleepy()


pf_pipeline()
pf_failing()
pf_override()
pf_slow()
