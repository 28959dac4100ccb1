"""Task queues and priorities through the whole pipeline: real ``podfleet worker`` processes,
Redis, PostgreSQL and the simulator. A flood on one task queue does not hold back another
queue's launches; short slots go to the highest priorities."""

from __future__ import annotations

import logging
import random
import statistics
import subprocess

import pytest
from pipeline_support import PODFLEET, SUCCESS, Pipeline, submission, task_key, wait_for
from prometheus_client import REGISTRY

from podfleet.contracts.states import TaskState
from podfleet.executor import TaskSubmission

FLOOD = 500
URGENT = 10
# Both queues are slow on purpose: the flood needs FLOOD / 10 = 50 s to launch, so a launch
# of the other queue that waited behind it (its messages, its permits or its worker threads)
# would take seconds, not the fraction of one its own queue needs.
QUEUE_RATES = "bulk=10,urgent=10"
URGENT_BOUND_S = 3.0


def test_a_flood_on_one_queue_does_not_delay_another_queues_launches(
        pipeline: Pipeline) -> None:
    # Given a worker (4 threads) on the default queue and two task queues of 10 creates/s
    pipeline.env["PODFLEET_QUEUE_RATES"] = QUEUE_RATES
    pipeline.start_worker(threads=4)
    executor = pipeline.started_executor()
    pipeline.wait_for_watcher()
    # When 500 tasks are submitted on "bulk", then 10 on "urgent"
    executor.submit_many([
        TaskSubmission(task_key(n, "bulk"), ["true"], queue="bulk",
                       executor_config={"annotations": SUCCESS}) for n in range(FLOOD)])
    urgent = [task_key(n, "urgent") for n in range(URGENT)]
    executor.submit_many([TaskSubmission(key, ["true"], queue="urgent",
                                         executor_config={"annotations": SUCCESS})
                          for key in urgent])

    def urgent_launched() -> bool:
        rows = pipeline.rows_by_key()
        return all(rows[key].launched_at is not None for key in urgent)

    pipeline.run_until(executor, urgent_launched, 30, "the urgent tasks to launch")

    # Then every urgent task launched within the bound of its submit ...
    rows = pipeline.rows_by_key()
    waits = [rows[key].launched_at - rows[key].queued_at for key in urgent]
    assert max(waits) <= URGENT_BOUND_S, sorted(waits)
    # ... while most of the flood, submitted before them, still waits for its own permits
    bulk_launched = sum(1 for key, row in rows.items()
                        if key.dag_id == "bulk" and row.launched_at is not None)
    assert bulk_launched < FLOOD / 2, bulk_launched
    print(f"urgent launch wait: median {statistics.median(waits):.3f}s, max {max(waits):.3f}s;"
          f" bulk launched meanwhile: {bulk_launched}/{FLOOD}")


@pytest.mark.slow
def test_short_slots_launch_the_highest_priorities_first(pipeline: Pipeline) -> None:
    # Given two slots and a worker
    pipeline.start_worker()
    executor = pipeline.started_executor(parallelism=2)
    pipeline.wait_for_watcher()
    # When 12 tasks with shuffled priorities are submitted at once
    priorities = list(range(12))
    random.Random(11).shuffle(priorities)
    by_key = {task_key(n, "prio"): p for n, p in enumerate(priorities)}
    executor.submit_many([
        TaskSubmission(key, ["true"], executor_config={"annotations": SUCCESS}, priority=p)
        for key, p in by_key.items()])
    pipeline.run_until_finished(executor, by_key, timeout=90)

    # Then all succeeded, and none was sent before a task of higher priority
    rows = pipeline.rows_by_key()
    assert {rows[key].task_state for key in by_key} == {TaskState.SUCCESS}
    sent = sorted(by_key, key=lambda key: (rows[key].enqueued_at, -by_key[key]))
    assert [by_key[key] for key in sent] == sorted(priorities, reverse=True)
    # ... and the launches followed: the first two pods were the two highest priorities
    launched = sorted(by_key, key=lambda key: rows[key].launched_at)
    assert {by_key[key] for key in launched[:2]} == {11, 10}


def test_a_task_of_an_unlisted_queue_launches_through_the_default_queue(
        pipeline: Pipeline) -> None:
    # Given workers that know only the task queue "etl"
    pipeline.env["PODFLEET_QUEUE_RATES"] = "etl=50"
    pipeline.start_worker()
    executor = pipeline.started_executor()
    # When tasks of "etl", of a queue nobody listed and of none are submitted
    keys = [task_key(0, "q"), task_key(1, "q"), task_key(2, "q")]
    executor.submit_many([
        TaskSubmission(keys[0], ["true"], queue="etl", executor_config={"annotations": SUCCESS}),
        TaskSubmission(keys[1], ["true"], queue="unlisted",
                       executor_config={"annotations": SUCCESS}),
        submission(keys[2], SUCCESS)])
    # Then all of them run to success
    pipeline.run_until_finished(executor, keys, timeout=60)
    assert {pipeline.rows_by_key()[k].task_state for k in keys} == {TaskState.SUCCESS}


@pytest.mark.slow
def test_a_queue_nobody_consumes_is_said_in_status_the_log_and_a_gauge(
        pipeline: Pipeline, caplog: pytest.LogCaptureFixture) -> None:
    # Given task queue "etl" configured, and the only worker consuming just the default queue
    pipeline.env["PODFLEET_QUEUE_RATES"] = "etl=50"
    pipeline.start_worker(queues=["default"])
    executor = pipeline.started_executor()
    wait_for(lambda: pipeline.redis.zcard(pipeline.keys.consumers("podfleet.launch")), 60,
             "the worker to announce the default queue")
    # When a task is submitted to "etl"
    executor.submit_many([TaskSubmission(task_key(0, "etl"), ["true"], queue="etl",
                                         executor_config={"annotations": SUCCESS})])
    # Then `podfleet status` says the queue has a launch waiting and no worker
    expected = "queue podfleet.launch.etl: 1 launch message(s) waiting, no worker consumes it"
    status = subprocess.run([PODFLEET, "status"], env=dict(pipeline.env), capture_output=True,
                            text=True, timeout=60)
    assert status.returncode == 0, status.stderr
    assert expected in status.stdout
    assert "podfleet.launch:" not in status.stdout  # the consumed queue is not named
    # ... and the executor logs it, and exports no consumer for it, as it syncs
    with caplog.at_level(logging.WARNING, logger="podfleet.executor"):
        pipeline.run_until(executor, lambda: expected in caplog.text, 60,
                           "the executor to log the unconsumed queue")
    consumers = REGISTRY.get_sample_value("podfleet_queue_consumers",
                                          {"queue": "podfleet.launch.etl"})
    assert consumers == 0
    assert REGISTRY.get_sample_value("podfleet_queue_consumers",
                                     {"queue": "podfleet.launch"}) == 1
