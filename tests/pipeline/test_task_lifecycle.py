"""What happens to single tasks along the whole pipeline: revoked while running, their Pending
pod deleted by someone else, stuck QUEUED with no worker running."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest
from kubernetes import client as k8s
from pipeline_support import Pipeline, submission, task_key, wait_for

from podfleet.contracts.states import TaskState
from podfleet.simulator.cluster import fate


def test_revoking_a_running_task_deletes_its_pod_and_relaunches_nothing(
        pipeline: Pipeline) -> None:
    # Given a long task running next to two short ones
    pipeline.start_worker()
    executor = pipeline.started_executor()
    long, short = task_key(0), [task_key(1), task_key(2)]
    executor.submit_many([submission(long, {fate.DURATION: "3600"}),
                          *(submission(key, {fate.DURATION: "0.2"}) for key in short)])
    pipeline.run_until(executor, lambda: any(r.key == long and r.state is TaskState.RUNNING
                                             for r in pipeline.reports), 60, "it to run")
    launch_id = pipeline.rows_by_key()[long].launch_id
    # When it is revoked
    assert executor.revoke(long) is True
    # Then its pod is deleted from the cluster ...
    pipeline.run_until(executor, lambda: launch_id not in pipeline.pods_by_launch(), 30,
                       "the pod to go")
    pipeline.run_until_finished(executor, [long, *short], timeout=30)
    # ... (and once the watcher has reported the deletion, nothing else happens)
    settle = time.monotonic() + 2.0
    pipeline.run_until(executor, lambda: time.monotonic() > settle, 10, "settling")
    row = pipeline.rows_by_key()[long]
    assert (row.task_state, row.reason, row.launch_id, row.attempt) == (
        TaskState.REVOKED, "revoked", launch_id, 1)
    assert pipeline.terminal_reports() == Counter(
        {(long, TaskState.REVOKED): 1, **{(key, TaskState.SUCCESS): 1 for key in short}})
    assert executor.revoke(long) is False
    # ... and nothing was relaunched: three creates, one delete, the long task has no pod
    stats = pipeline.stats()
    assert stats.creates.accepted == 3
    assert stats.requests.get("delete", {}) == {200: 1}
    rows = pipeline.rows_by_key()
    assert set(pipeline.pods_by_launch()) == {rows[key].launch_id for key in short}


def test_a_pending_pod_deleted_by_someone_else_is_relaunched_under_a_new_launch_id(
        pipeline: Pipeline) -> None:
    # Given a task whose pod stays in ContainerCreating for 3 s
    pipeline.start_worker()
    executor = pipeline.started_executor()
    key = task_key(0)
    first_launch = executor.submit(key, ["true"], executor_config={
        "annotations": {fate.START_DELAY: "3", fate.DURATION: "0.2"}})

    def creating() -> dict[str, Any] | None:
        pod = pipeline.pods_by_launch().get(first_launch)
        if pod is None or not pod["spec"].get("nodeName"):
            return None
        return pod if pod["status"].get("phase") == "Pending" else None

    pod = wait_for(creating, timeout=30, what="the pod to be ContainerCreating")
    assert pod is not None
    # When someone deletes it with the official client before it ran
    core = k8s.CoreV1Api(pipeline.sim.api_client())
    core.delete_namespaced_pod(pod["metadata"]["name"], pipeline.namespace)
    core.api_client.close()
    # Then the task is relaunched with a new launch id (a new pod) and succeeds
    pipeline.run_until_finished(executor, [key], timeout=30)
    row = pipeline.rows_by_key()[key]
    assert (row.task_state, row.attempt) == (TaskState.SUCCESS, 2)
    assert row.launch_id != first_launch
    assert pipeline.terminal_reports() == Counter({(key, TaskState.SUCCESS): 1})
    stats = pipeline.stats()
    assert stats.creates.accepted == 2
    assert set(pipeline.pods_by_launch()) == {row.launch_id}


def test_a_task_stuck_queued_past_the_timeout_fails_with_a_reason(pipeline: Pipeline) -> None:
    # Given no worker at all, and tasks may wait 1.5 s for a pod, then fail
    executor = pipeline.started_executor(queued_timeout_seconds=1.5, queued_timeout_action="fail")
    keys = [task_key(n) for n in range(5)]
    started = time.monotonic()
    executor.submit_many([submission(key, {fate.DURATION: "0.2"}) for key in keys])
    # When the scheduler keeps syncing
    pipeline.run_until_finished(executor, keys, timeout=20)
    # Then each task failed, saying why, once the timeout had passed
    assert time.monotonic() - started >= 1.5
    reason = "queued 1.5s without a pod (PODFLEET_QUEUED_TIMEOUT_ACTION=fail)"
    assert {(r.key, r.state, r.reason) for r in pipeline.reports} == {
        (key, TaskState.FAILED, reason) for key in keys}
    assert {(row.task_state, row.reason) for row in pipeline.rows()} == {
        (TaskState.FAILED, reason)}
    assert pipeline.stats().creates.attempted == 0


@pytest.mark.slow
def test_a_task_stuck_queued_is_relaunched_with_a_new_launch_id_once_workers_start(
        pipeline: Pipeline) -> None:
    # Given no worker yet, and tasks that may wait 5 s for a pod before a relaunch
    executor = pipeline.started_executor(queued_timeout_seconds=5, queued_timeout_action="relaunch")
    keys = [task_key(n) for n in range(5)]
    first = dict(zip(keys, executor.submit_many(
        [submission(key, {fate.DURATION: "0.2"}) for key in keys]), strict=True))
    # When the timeout passes, the tasks get new launches
    pipeline.run_until(executor, lambda: {r.attempt for r in pipeline.rows()} == {2}, 20,
                       "the relaunch")
    relaunched = {row.key: row.launch_id for row in pipeline.rows()}
    assert all(relaunched[key] != first[key] for key in keys)
    assert {row.task_state for row in pipeline.rows()} == {TaskState.QUEUED}
    # ... and once a worker starts, every task runs under its new launch and succeeds
    pipeline.start_worker()
    pipeline.run_until_finished(executor, keys, timeout=30)
    rows = pipeline.rows_by_key()
    assert {key: (row.task_state, row.attempt, row.launch_id) for key, row in rows.items()} == {
        key: (TaskState.SUCCESS, 2, relaunched[key]) for key in keys}
    assert pipeline.terminal_reports() == Counter({(key, TaskState.SUCCESS): 1 for key in keys})
    # The obsolete launches' messages still made pods, which the executor removes
    assert pipeline.stats().creates.accepted == 2 * len(keys)
    pipeline.run_until(executor, lambda: set(pipeline.pods_by_launch()) == set(
        relaunched.values()), 20, "the obsolete pods to go")


@pytest.mark.slow
def test_a_pod_stuck_pending_for_a_reason_nobody_maps_fails_its_task_after_the_timeout(
        pipeline: Pipeline) -> None:
    # Given a watcher that treats only InvalidImageName as fatal (a typo'd list, say), and a
    # pod whose image never arrives (ErrImagePull, then ImagePullBackOff)
    pipeline.env["PODFLEET_DELETE_POLICY"] = "always"
    pipeline.env["PODFLEET_FATAL_CONTAINER_REASONS"] = "InvalidImageName"
    pipeline.start_worker()
    executor = pipeline.started_executor(pending_timeout_seconds=3)
    key = task_key(0)
    executor.submit(key, ["true"], executor_config={
        "annotations": {fate.IMAGE_PULL_ERROR: "ErrImagePull"}})
    # When it stays Pending past the pending timeout
    pipeline.run_until_finished(executor, [key], timeout=60)
    # Then the task fails with the pod's own reason, and its pod is deleted
    row = pipeline.rows_by_key()[key]
    assert row.task_state is TaskState.FAILED
    assert row.reason is not None and row.reason.startswith("pending 3s without starting: ")
    assert "ImagePull" in row.reason
    wait_for(lambda: not pipeline.pods(), timeout=30, what="the pending pod to be deleted")


def test_an_unschedulable_pod_fails_its_task_with_the_schedulers_message(
        pipeline: Pipeline) -> None:
    pipeline.env["PODFLEET_DELETE_POLICY"] = "always"
    pipeline.start_worker()
    executor = pipeline.started_executor(pending_timeout_seconds=3)
    key = task_key(0)
    executor.submit(key, ["true"], executor_config={"node_selector": {"pool": "no-such-pool"}})
    pipeline.run_until_finished(executor, [key], timeout=60)
    row = pipeline.rows_by_key()[key]
    assert row.task_state is TaskState.FAILED
    assert row.reason is not None and "Unschedulable" in row.reason
