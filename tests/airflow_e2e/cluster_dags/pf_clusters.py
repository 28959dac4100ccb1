"""A DAG whose tasks name their cluster, for the two-cluster Airflow end-to-end test."""

from __future__ import annotations

from airflow.sdk import dag, task


@dag(dag_id="pf_clusters", schedule=None, catchup=False, tags=["podfleet"])
def pf_clusters():
    @task(executor_config={"cluster": "west"})
    def on_west() -> str:
        return "ran"

    @task(executor_config={"cluster": "default"})
    def on_default() -> str:
        return "ran"

    on_west() >> on_default()


pf_clusters()
