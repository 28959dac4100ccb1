"""The DAG of the KubernetesExecutor-config test: its task reads what the pod template set."""

from __future__ import annotations

import os

from airflow.sdk import dag, task


@dag(dag_id="pf_ke", schedule=None, catchup=False)
def pf_ke():
    @task
    def from_template() -> str:
        return os.environ.get("FROM_KE_TEMPLATE", "")

    from_template()


pf_ke()
