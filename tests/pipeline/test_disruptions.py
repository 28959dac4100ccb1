"""A task whose pod is disrupted (preempted, evicted by a drain, …) is relaunched without
spending its retry, up to PODFLEET_DISRUPTION_RETRIES; a plain deletion still fails it.

Real workers, Redis, PostgreSQL and the simulator over HTTP, at the default disruption budget
and delete policy. The disruption is made as Kubernetes' own controllers make one, through the
API with the official client: the pod's status gets a ``DisruptionTarget`` condition, then the
pod is deleted at once.
"""

from __future__ import annotations

from collections import Counter

import pytest
from kubernetes import client
from pipeline_support import Pipeline, submission, task_key
from prometheus_client import REGISTRY

from podfleet.contracts.keys import TaskKey
from podfleet.contracts.states import TaskState
from podfleet.executor import Executor
from podfleet.settings import Settings
from podfleet.simulator.cluster import fate

pytestmark = pytest.mark.timeout(240)

RUN_SECONDS = "6"  # long enough to disrupt each pod while it runs, on a loaded machine
DEFAULT_BUDGET = Settings.from_env({}).executor.disruption_retries


def _disruptions(reason: str) -> float:
    return REGISTRY.get_sample_value("podfleet_pod_disruptions_total",
                                     {"reason": reason}) or 0.0


def _start(pipeline: Pipeline) -> tuple[Executor, TaskKey]:
    """One running-for-a-while task at the default delete policy: its executor and key."""
    pipeline.env["PODFLEET_DELETE_POLICY"] = "always"
    pipeline.start_worker()
    executor = pipeline.started_executor()
    key = task_key(0)
    executor.submit_many([submission(key, {fate.DURATION: RUN_SECONDS})])
    return executor, key


def _disrupt_running_pod(pipeline: Pipeline, executor: Executor, key: TaskKey,
                         reason: str | None, launches_before: set[str]) -> str:
    """Wait for the task's pod of a launch not in ``launches_before`` to run, then delete it
    (grace 0), first marking it with a DisruptionTarget of ``reason`` unless None. Returns
    the disrupted launch's id."""
    def running_new_launch() -> bool:
        row = pipeline.rows_by_key()[key]
        return row.task_state is TaskState.RUNNING and row.launch_id not in launches_before

    pipeline.run_until(executor, running_new_launch, 60, "a new launch of the task to run")
    row = pipeline.rows_by_key()[key]
    assert row.pod_name is not None
    api = client.CoreV1Api(pipeline.sim.api_client())
    try:
        if reason is not None:
            api.patch_namespaced_pod_status(row.pod_name, pipeline.namespace, {
                "status": {"conditions": [{
                    "type": "DisruptionTarget", "status": "True", "reason": reason,
                    "message": f"test: {reason}"}]}})
        api.delete_namespaced_pod(row.pod_name, pipeline.namespace, grace_period_seconds=0)
    finally:
        api.api_client.close()
    return row.launch_id


@pytest.mark.parametrize("reason", ["EvictionByEvictionAPI", "PreemptionByScheduler"])
def test_a_disrupted_pod_is_relaunched_and_the_task_succeeds_without_spending_its_retry(
        pipeline: Pipeline, reason: str) -> None:
    # Given a task whose pod is running
    executor, key = _start(pipeline)
    counted_before = _disruptions(reason)
    # When the pod is disrupted (drained / preempted)
    disrupted = _disrupt_running_pod(pipeline, executor, key, reason, set())
    # Then the same try runs again under a new launch, and succeeds
    pipeline.run_until_finished(executor, [key], timeout=60)
    row = pipeline.rows_by_key()[key]
    assert (row.task_state, row.try_number, row.attempt, row.disruptions) == (
        TaskState.SUCCESS, key.try_number, 2, 1)
    assert row.launch_id != disrupted
    # ... the scheduler heard only of the success: no failure, so no retry spent
    assert pipeline.terminal_reports() == Counter({(key, TaskState.SUCCESS): 1})
    # ... and the disruption was counted once
    assert _disruptions(reason) == counted_before + 1


@pytest.mark.slow
def test_a_try_disrupted_past_its_budget_fails_with_the_disruptions_reason(
        pipeline: Pipeline) -> None:
    # Given a running task
    executor, key = _start(pipeline)
    launches: set[str] = set()
    # When each of its pods is preempted, one more time than the budget allows
    for _ in range(DEFAULT_BUDGET + 1):
        launches.add(_disrupt_running_pod(pipeline, executor, key, "PreemptionByScheduler",
                                          launches))
    # Then the try fails with the disruption's reason and how often it happened
    pipeline.run_until_finished(executor, [key], timeout=60)
    row = pipeline.rows_by_key()[key]
    assert (row.task_state, row.reason, row.disruptions) == (
        TaskState.FAILED, f"PreemptionByScheduler (disrupted {DEFAULT_BUDGET + 1} times)",
        DEFAULT_BUDGET + 1)
    assert pipeline.terminal_reports() == Counter({(key, TaskState.FAILED): 1})


def test_a_running_pod_deleted_without_a_disruption_condition_still_fails_its_task(
        pipeline: Pipeline) -> None:
    # Given a running task
    executor, key = _start(pipeline)
    # When its pod is deleted by someone, with no DisruptionTarget condition
    _disrupt_running_pod(pipeline, executor, key, None, set())
    # Then the task fails as before, and is not relaunched
    pipeline.run_until_finished(executor, [key], timeout=60)
    row = pipeline.rows_by_key()[key]
    assert (row.task_state, row.reason, row.attempt, row.disruptions) == (
        TaskState.FAILED, "PodDeleted", 1, 0)
