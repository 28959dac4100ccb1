"""Quota-aware waiting along the whole pipeline: a full ResourceQuota parks launches (no
attempt counted) until it has room, highest priority first; only the queued timeout ends the
wait, failing the task with the quota's own message; a pod that can never fit fails at once.

The quota faults run at default launch settings (attempts, backoff, quota poll, delete
policy); only the test about the queued timeout shortens that timeout.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from pipeline_support import Pipeline, task_key

from podfleet.contracts.keys import TaskKey
from podfleet.contracts.states import TaskState
from podfleet.executor import Executor, TaskSubmission
from podfleet.executor.cli import status
from podfleet.executor.db import make_engine
from podfleet.simulator.cluster import fate

QUOTA = "q"
DEFAULTS = ("PODFLEET_LAUNCH_BACKOFF_SECONDS", "PODFLEET_LAUNCH_BACKOFF_MAX_SECONDS",
            "PODFLEET_DELETE_POLICY")


def at_defaults(pipeline: Pipeline, **executor_env: Any) -> Executor:
    """A worker and an executor at default launch settings (the fault runs at defaults)."""
    for name in DEFAULTS:
        pipeline.env.pop(name, None)
    pipeline.start_worker()
    executor = pipeline.executor(queued_timeout_seconds=executor_env.pop(
        "queued_timeout_seconds", 600), **executor_env)
    executor.start()
    return executor


def set_quota(pipeline: Pipeline, hard: dict[str, str]) -> None:
    """Create the namespace's quota ``q``, or replace its hard limits."""
    path = f"/api/v1/namespaces/{pipeline.namespace}/resourcequotas"
    body = {"metadata": {"name": QUOTA}, "spec": {"hard": hard}}
    if any(q["metadata"]["name"] == QUOTA
           for q in pipeline.kube.list_resource_quotas(pipeline.namespace)):
        pipeline.kube.request("PATCH", f"{path}/{QUOTA}", body={"spec": {"hard": hard}},
                              content_type="application/merge-patch+json")
    else:
        pipeline.kube.request("POST", path, body=body)


def task(n: int, seconds: str = "0.3", **config: Any) -> TaskSubmission:
    return TaskSubmission(task_key(n), ["true"], executor_config={
        "annotations": {fate.DURATION: seconds}, **config})


def live_pods(pipeline: Pipeline) -> int:
    return sum(1 for pod in pipeline.pods()
               if (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"))


def states(pipeline: Pipeline, keys: list[TaskKey]) -> Counter[TaskState]:
    rows = pipeline.rows_by_key()
    return Counter(rows[key].task_state for key in keys)


def test_a_full_pod_quota_parks_launches_until_pods_end_and_fails_none(
        pipeline: Pipeline) -> None:
    # Given a namespace whose quota lets 5 pods run at once
    set_quota(pipeline, {"pods": "5"})
    executor = at_defaults(pipeline)
    # When 30 tasks are submitted at once
    keys = [task_key(n) for n in range(30)]
    executor.submit_many([task(n) for n in range(30)])
    most = 0

    def finished() -> bool:
        nonlocal most
        most = max(most, live_pods(pipeline))
        return set(keys) <= pipeline.finished_keys()

    pipeline.run_until(executor, finished, 120, "30 tasks to finish")
    # Then every one succeeded, never more than 5 pods ran, and the quota did refuse some
    assert pipeline.terminal_reports() == Counter({(k, TaskState.SUCCESS): 1 for k in keys})
    assert most <= 5
    assert pipeline.stats().creates.rejected.get("Forbidden", 0) > 0


@pytest.mark.slow
def test_a_quota_that_fills_mid_run_fails_no_task_and_all_finish_once_raised(
        pipeline: Pipeline) -> None:
    # Given a cpu quota that two long-running tasks fill
    set_quota(pipeline, {"requests.cpu": "2"})
    executor = at_defaults(pipeline)
    long = [task_key(n) for n in range(2)]
    one_cpu = {"requests": {"cpu": "1"}}
    executor.submit_many([task(n, "3600", resources=one_cpu) for n in range(2)])
    pipeline.run_until(executor, lambda: states(pipeline, long)[TaskState.RUNNING] == 2, 60,
                       "the long tasks to run")
    # When six more tasks arrive, they wait on the quota, and status says why
    short = [task_key(n) for n in range(2, 8)]
    executor.submit_many([task(n, resources=one_cpu) for n in range(2, 8)])

    def all_waiting() -> bool:
        rows = pipeline.rows_by_key()
        return all(rows[k].waiting_reason for k in short)

    pipeline.run_until(executor, all_waiting, 60, "the short tasks to wait on quota")
    engine = make_engine(pipeline.database_url)
    try:
        report = status.collect(engine, dag_id=None, state="queued", now=0.0,
                                heartbeat_timeout=60)
    finally:
        engine.dispose()
    reasons = {entry["reason"] for entry in report["by_reason"]}
    assert any(r.startswith(f"waiting on quota in ns {pipeline.namespace}: exceeded quota: q")
               for r in reasons), reasons
    # ... and once the quota is raised
    set_quota(pipeline, {"requests.cpu": "10"})
    pipeline.run_until_finished(executor, short, timeout=60)
    # Then all of them succeeded (none failed while waiting), and the wait was cleared
    assert pipeline.terminal_reports() == Counter({(k, TaskState.SUCCESS): 1 for k in short})
    assert all(row.waiting_reason is None for k, row in pipeline.rows_by_key().items()
               if k in short)
    assert {row.attempt for row in pipeline.rows()} == {1}


@pytest.mark.slow
def test_the_queued_timeout_fails_a_task_waiting_on_quota_with_the_quota_message(
        pipeline: Pipeline) -> None:
    # Given a quota of one pod, taken by a long task, and a short queued timeout
    set_quota(pipeline, {"pods": "1"})
    executor = at_defaults(pipeline, queued_timeout_seconds=4)
    executor.submit_many([task(0, "3600")])
    pipeline.run_until(executor, lambda: states(pipeline, [task_key(0)])[TaskState.RUNNING]
                       == 1, 60, "the long task to run")
    # When another task waits on the quota past the timeout
    waiting = task_key(1)
    executor.submit_many([task(1)])
    pipeline.run_until_finished(executor, [waiting], timeout=60)
    # Then it failed (not relaunched) with the quota's own message, and no pod of it exists
    row = pipeline.rows_by_key()[waiting]
    assert row.task_state is TaskState.FAILED
    assert row.attempt == 1
    assert row.reason is not None and row.reason.startswith(
        f"queued 4s waiting on quota in ns {pipeline.namespace}: exceeded quota: q, "
        "requested: pods=1, used: pods=1, limited: pods=1"), row.reason
    assert row.launch_id not in pipeline.pods_by_launch()


@pytest.mark.slow
def test_a_pod_that_can_never_fit_the_quota_fails_at_once_with_the_reason(
        pipeline: Pipeline) -> None:
    # Given a quota of 1 cpu
    set_quota(pipeline, {"requests.cpu": "1"})
    executor = at_defaults(pipeline)
    # When a task asks for 4
    executor.submit_many([task(0, resources={"requests": {"cpu": "4"}})])
    pipeline.run_until_finished(executor, [task_key(0)], timeout=60)
    # Then it fails after one create, saying the quota can never admit it
    row = pipeline.rows_by_key()[task_key(0)]
    assert row.task_state is TaskState.FAILED
    assert row.reason is not None and "exceeded quota: q" in row.reason
    assert row.reason.endswith("(the pod asks more than the quota allows at all)")
    assert pipeline.stats().creates.rejected.get("Forbidden", 0) == 1


@pytest.mark.slow
def test_a_pod_a_quota_requires_limits_of_fails_at_once_with_the_api_message(
        pipeline: Pipeline) -> None:
    # Given a quota on limits.cpu
    set_quota(pipeline, {"limits.cpu": "4"})
    executor = at_defaults(pipeline)
    # When a task states no cpu limit
    executor.submit_many([task(0)])
    pipeline.run_until_finished(executor, [task_key(0)], timeout=60)
    # Then it fails with the API server's "must specify" message, no waiting
    row = pipeline.rows_by_key()[task_key(0)]
    assert row.task_state is TaskState.FAILED
    assert row.reason is not None and "must specify limits.cpu" in row.reason
    assert row.waiting_reason is None
