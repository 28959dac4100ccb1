"""Task queues and priorities at the executor: each queue listed in PODFLEET_QUEUE_RATES is
sent to a dramatiq queue of its own, every other to the default one; a message holds one task
queue, highest priority first; short slots go to the highest priorities; a queue name that
is not one is refused at submit, naming the rule."""

from __future__ import annotations

import pytest
from executor_support import ExecutorFactory, event, key, publish, row_of, rows, sent_batches

from podfleet.contracts.states import TaskState
from podfleet.executor import InvalidSubmission, TaskSubmission

CMD = ["true"]


def test_a_listed_queue_has_its_own_dramatiq_queue_and_the_rest_share_the_default(
        make_executor: ExecutorFactory) -> None:
    # Given an executor that knows the task queue "etl"
    executor = make_executor(queue_rates="etl=5")
    # When tasks of "etl", of an unlisted queue, of "default" and of no queue are submitted
    executor.submit_many([TaskSubmission(key("etl"), CMD, queue="etl"),
                          TaskSubmission(key("other"), CMD, queue="other"),
                          TaskSubmission(key("default"), CMD, queue="default"),
                          TaskSubmission(key("none"), CMD)])
    # Then the etl task waits on podfleet.launch.etl and the others on today's queue
    on_etl = [r.key.task_id for b in sent_batches(executor, "podfleet.launch.etl")
              for r in b.requests]
    on_default = sorted(r.key.task_id for b in sent_batches(executor) for r in b.requests)
    assert on_etl == ["etl"]
    assert on_default == ["default", "none", "other"]


def test_each_message_holds_one_task_queue_highest_priority_first(
        make_executor: ExecutorFactory) -> None:
    # Given an executor with two listed queues
    executor = make_executor(queue_rates="a=5,b=5", batch_size=50)
    # When tasks of both, with mixed priorities, are submitted in one call
    priorities = [3, 9, 1, 7, 5, 2, 8]
    executor.submit_many([TaskSubmission(key(f"t{i}"), CMD, queue="ab"[i % 2], priority=p)
                          for i, p in enumerate(priorities)])
    # Then each queue's one message carries only its tasks, in descending priority
    for queue in ("a", "b"):
        (batch,) = sent_batches(executor, f"podfleet.launch.{queue}")
        assert {r.queue for r in batch.requests} == {queue}
        carried = [r.priority for r in batch.requests]
        assert carried == sorted(carried, reverse=True)
    assert sum(len(b.requests) for q in "ab"
               for b in sent_batches(executor, f"podfleet.launch.{q}")) == len(priorities)


def test_short_slots_go_to_the_highest_priorities_of_one_submit(
        make_executor: ExecutorFactory, database_url: str) -> None:
    # Given 3 slots
    executor = make_executor(parallelism=3)
    executor.start()
    # When 8 tasks with shuffled priorities are submitted at once
    priorities = [4, 10, 1, 8, 6, 2, 9, 3]
    executor.submit_many([TaskSubmission(key("p", i), CMD, priority=p)
                          for i, p in enumerate(priorities)])
    # Then the three sent are the three highest
    sent = sorted(r.priority for r in rows(database_url) if r.enqueued_at is not None)
    assert sent == [8, 9, 10]


def test_a_freed_slot_goes_to_a_later_higher_priority_before_older_waiting_tasks(
        make_executor: ExecutorFactory, database_url: str, redis_url: str) -> None:
    # Given 2 slots, taken by two of four low-priority tasks, the other two waiting
    executor = make_executor(parallelism=2)
    executor.start()
    executor.submit_many([TaskSubmission(key("low", i), CMD, priority=1) for i in range(4)])
    # And two high-priority tasks submitted after them
    executor.submit_many([TaskSubmission(key("high", i), CMD, priority=5) for i in range(2)])
    assert {r.key.task_id for r in rows(database_url) if r.enqueued_at} == {"low"}
    # When the two running tasks finish and the executor syncs
    running = [r for r in rows(database_url) if r.enqueued_at is not None]
    publish(redis_url, [event(r, TaskState.SUCCESS) for r in running])
    executor.sync()
    # Then the freed slots went to the high-priority tasks, not to the older low ones
    assert all(row_of(database_url, key("high", i)).enqueued_at for i in range(2))
    assert [r.enqueued_at for r in rows(database_url)
            if r.key.task_id == "low" and r.state == "queued"] == [None, None]


def test_the_priority_is_kept_in_the_db_and_shown_among_queued_tasks(
        make_executor: ExecutorFactory, database_url: str) -> None:
    executor = make_executor(parallelism=1)
    executor.start()
    executor.submit_many([TaskSubmission(key("x", i), CMD, priority=i) for i in range(3)])
    assert [r.priority for r in rows(database_url)] == [0, 1, 2]
    assert sorted(t.priority for t in executor.queued_tasks.values()) == [0, 1]


@pytest.mark.parametrize(("queue", "problem"), [
    ("my queue", "queue 'my queue' is invalid: a queue name starts with a letter or '_' and "
                 "has only letters, digits, '.', '_' and '-'"),
    ("", "queue '' is invalid"),
    ("etl.DQ", "must not end in DQ or XQ"),
    ("x" * 201, "at most 200 characters"),
])
def test_an_invalid_queue_name_is_refused_naming_the_rule_and_nothing_is_written(
        make_executor: ExecutorFactory, database_url: str, queue: str, problem: str) -> None:
    executor = make_executor()
    with pytest.raises(InvalidSubmission) as refused:
        executor.submit_many([TaskSubmission(key("ok"), CMD),
                              TaskSubmission(key("bad"), CMD, queue=queue)])
    assert problem in str(refused.value) and "task 1" in str(refused.value)
    assert rows(database_url) == []


@pytest.mark.parametrize("priority", [1.5, "high", True, 2**31])
def test_a_priority_that_is_no_32_bit_integer_is_refused(
        make_executor: ExecutorFactory, database_url: str, priority: object) -> None:
    executor = make_executor()
    with pytest.raises(InvalidSubmission, match="priority must be a 32-bit integer"):
        executor.submit_many([TaskSubmission(key("bad"), CMD, priority=priority)])  # type: ignore[arg-type]
    assert rows(database_url) == []
