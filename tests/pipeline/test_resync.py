"""The periodic resync (``PODFLEET_RESYNC_SECONDS``): with every pod event lost (no watcher
runs), tasks still reach the state their pods imply within the resync period, and the resync
costs list calls by the page, not requests by the task.

The period is short here: it is the subject of these tests.
"""

from __future__ import annotations

from collections import Counter

import pytest
from pipeline_support import Pipeline, submission, submit_tasks, task_key, wait_for

from podfleet.contracts.states import TaskState
from podfleet.monitoring.metrics import RESYNC_REPAIRS, ResyncRepair
from podfleet.simulator.cluster import fate

RESYNC_SECONDS = 4


def _repairs(kind: ResyncRepair) -> float:
    return RESYNC_REPAIRS.labels(kind=kind)._value.get()


def test_tasks_whose_pod_events_are_all_lost_finish_by_the_resync(pipeline: Pipeline) -> None:
    # Given launchers but no watcher: no pod event reaches the executor
    pipeline.start_worker(watcher=False)
    executor = pipeline.started_executor(resync_seconds=RESYNC_SECONDS)
    before = _repairs(ResyncRepair.POD_FINISHED)
    keys = [task_key(n) for n in range(6)]
    # When the tasks' pods run and finish, half of them failing
    executor.submit_many([submission(key, {fate.DURATION: "0.3",
                                           fate.EXIT_CODE: str(n % 2)})
                          for n, key in enumerate(keys)])
    # Then the resync finds the finished pods and completes each task once, by its pod
    pipeline.run_until_finished(executor, keys, timeout=10 * RESYNC_SECONDS)
    assert pipeline.terminal_reports() == Counter(
        {(key, TaskState.FAILED if n % 2 else TaskState.SUCCESS): 1
         for n, key in enumerate(keys)})
    # ... counting each as a repair: each is a lost event
    assert _repairs(ResyncRepair.POD_FINISHED) - before == len(keys)


@pytest.mark.slow
def test_a_launched_task_whose_pod_vanished_unwatched_is_launched_again(
        pipeline: Pipeline) -> None:
    # Given a task launched, with no watcher to see its pod go
    pipeline.start_worker(watcher=False)
    executor = pipeline.started_executor(resync_seconds=RESYNC_SECONDS)
    before = _repairs(ResyncRepair.POD_VANISHED)
    key = task_key(0)
    executor.submit_many([submission(key, {fate.DURATION: "2"})])
    pipeline.run_until(executor, lambda: len(pipeline.pods()) == 1, 30, "the pod created")
    first = pipeline.rows_by_key()[key].launch_id
    # When its pod is deleted through the API
    pod = pipeline.pods()[0]["metadata"]
    pipeline.kube.delete_pod(pod["namespace"], pod["name"], grace_period_seconds=0)
    # Then the resync requeues it under a new launch, whose pod runs it to success
    pipeline.run_until_finished(executor, [key], timeout=15 * RESYNC_SECONDS)
    row = pipeline.rows_by_key()[key]
    assert row.task_state is TaskState.SUCCESS
    assert row.launch_id != first
    assert _repairs(ResyncRepair.POD_VANISHED) - before == 1


@pytest.mark.slow
def test_the_resync_lists_pods_by_the_page_and_reads_no_pod_by_the_task(
        pipeline: Pipeline) -> None:
    # Given 40 tasks whose pods finished unwatched, and a resync reading 10 pods a page
    pipeline.start_worker(watcher=False)
    executor = pipeline.executor(resync_seconds=RESYNC_SECONDS)
    executor.resync.page_size = 10
    executor.start()
    keys = submit_tasks(executor, 40, "0.1")
    wait_for(lambda: sum(1 for p in pipeline.pods()
                         if p["status"].get("phase") == "Succeeded") == len(keys),
             timeout=60, what="every pod finished")
    requests_before = pipeline.stats().requests
    # When the resync repairs them all
    pipeline.run_until_finished(executor, keys, timeout=10 * RESYNC_SECONDS)
    # Then it made a handful of list calls (pages of 10, one pass or two), and no reads of
    # single pods
    requests = pipeline.stats().requests
    lists = sum(requests.get("list", {}).values()) - sum(
        requests_before.get("list", {}).values())
    gets = sum(requests.get("get", {}).values()) - sum(requests_before.get("get", {}).values())
    assert 4 <= lists <= 3 * (len(keys) // 10 + 1)
    assert gets == 0
