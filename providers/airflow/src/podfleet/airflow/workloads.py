"""Airflow ``ExecuteTask`` workloads as podfleet submissions.

What a pod needs to run one Airflow task try is the Task SDK's entry point with the workload
as JSON, exactly as Airflow's own Kubernetes executor runs it. Everything Airflow-specific is
settled here, scheduler-side, so the worker pool sees an ordinary podfleet launch:

* the launch id (which names the pod) comes from the try's pre-assigned
  ``external_executor_id``, so a scheduler that restarts and resends the same workload reuses
  it, while a requeue (a new ``external_executor_id``) gets a new pod;
* the launch deadline is the workload token's expiry: a pod created later could not talk to
  the API server anyway;
* labels and annotations match the KubernetesExecutor's (see :func:`airflow_metadata`).
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from typing import Any

import orjson

from podfleet.contracts.keys import TaskKey
from podfleet.contracts.naming import safe_label_value
from podfleet.executor.tracing import TRACEPARENT_ENV

TASK_SDK_ENTRY = ("python", "-m", "airflow.sdk.execution_time.execute_workload")
# The KubernetesExecutor's label for the task instance's UUID.
TI_ID_LABEL = "ti_id"
SCHEDULER_JOB_LABEL = "airflow-worker"
# Callbacks run as pods too; their podfleet keys live under this pseudo DAG.
CALLBACK_DAG = "airflow-callbacks"



def with_trace_context(config: dict[str, Any], ti: Any) -> dict[str, Any]:
    """``config`` with the task's trace context (Airflow's ``context_carrier``, set when
    Airflow traces) as ``TRACEPARENT`` in the pod's env, unless the task set one itself: the
    task's spans, and podfleet's own for the try, then join the scheduler's trace."""
    carrier = getattr(ti, "context_carrier", None) or {}
    parent = carrier.get("traceparent") if isinstance(carrier, dict) else None
    if not parent:
        return config
    env = config.get("env")
    if env is None:
        return {**config, "env": {TRACEPARENT_ENV: str(parent)}}
    if isinstance(env, dict):
        return {**config, "env": {TRACEPARENT_ENV: str(parent), **env}}
    if any(getattr(item, "name", None) == TRACEPARENT_ENV
           or (isinstance(item, dict) and item.get("name") == TRACEPARENT_ENV)
           for item in env):
        return config
    return {**config, "env": [*env, {"name": TRACEPARENT_ENV, "value": str(parent)}]}


def workload_command(workload: Any) -> list[str]:
    """The pod's arguments: the Task SDK entry point with ``workload`` as JSON."""
    return [*TASK_SDK_ENTRY, "--json-string", workload.model_dump_json()]


def task_key(ti: Any) -> TaskKey:
    """podfleet's key for an Airflow task instance (or its workload DTO)."""
    return TaskKey(ti.dag_id, ti.task_id, ti.run_id,
                   -1 if ti.map_index is None else int(ti.map_index), int(ti.try_number))


def launch_id_for(external_executor_id: str | None, ti_id: object,
                  pod_attempt: int = 1) -> str:
    """The launch id of one pod for a task try: 32 hex characters.

    Derived from ``external_executor_id`` (a UUID, as Airflow pre-assigns it) when there is
    one, else from the task instance id. ``pod_attempt`` > 1 names the replacement pods of a
    try whose pod failed before the task started: a launch id is never used twice.
    """
    base = external_executor_id or f"ti:{ti_id}"
    if pod_attempt == 1:
        try:
            return uuid.UUID(base).hex
        except ValueError:
            pass
    seed = base if pod_attempt == 1 else f"{base}#{pod_attempt}"
    return hashlib.blake2b(seed.encode(), digest_size=16).hexdigest()


def token_expiry(token: str | None) -> float | None:
    """The ``exp`` claim (epoch seconds) of a JWT, read without verifying it; None if absent.

    The scheduler made the token: podfleet only needs to know until when it is good.
    """
    if not token or token.count(".") != 2:
        return None
    payload = token.split(".")[1]
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, int | float) and exp > 0 else None


def airflow_metadata(ti: Any, *, scheduler_job_id: object,
                     airflow_version: str) -> tuple[dict[str, str], dict[str, str]]:
    """Labels and annotations as the KubernetesExecutor sets them on its worker pods.

    Labels hold label-safe values (sanitised and hashed where needed), annotations the raw
    ones, so selectors such as ``dag_id=etl,task_id=load`` and dashboards built on the
    KubernetesExecutor's pods keep working. Its ``kubernetes_executor=True`` label is left
    off on purpose: a KubernetesExecutor sharing the cluster would otherwise adopt these pods.
    """
    labels = {
        "dag_id": safe_label_value(ti.dag_id),
        "task_id": safe_label_value(ti.task_id),
        "run_id": safe_label_value(ti.run_id),
        "try_number": str(ti.try_number),
        "airflow_version": safe_label_value(airflow_version.replace("+", "-")),
        TI_ID_LABEL: safe_label_value(str(ti.id)),
    }
    annotations = {"dag_id": ti.dag_id, "task_id": ti.task_id, "run_id": ti.run_id,
                   "try_number": str(ti.try_number), TI_ID_LABEL: str(ti.id)}
    if scheduler_job_id is not None:
        labels[SCHEDULER_JOB_LABEL] = safe_label_value(str(scheduler_job_id))
    if ti.map_index is not None and int(ti.map_index) >= 0:
        labels["map_index"] = annotations["map_index"] = str(ti.map_index)
    return labels, annotations


