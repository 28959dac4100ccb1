"""ExecutorThread: what a caller hands over is written and launched on the background thread;
stopping writes what was handed over; a DB refusal is logged and retried, an invalid
submission comes back as a refusal; a fenced executor's thread stops and says so; a burst
handed over in one step is listed on the thread; the caller's look-up for events runs there
before it sees them."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from executor_support import (
    Clock,
    ExecutorFactory,
    age_heartbeat,
    event,
    key,
    publish,
    row_of,
    rows,
)

from podfleet.contracts.keys import TaskKey
from podfleet.contracts.states import TaskState
from podfleet.executor import Executor, ExecutorFenced, TaskSubmission
from podfleet.executor.executor_thread import (
    Deferred,
    DeferredBatch,
    Events,
    ExecutorThread,
    Handed,
    Ready,
)

CMD = ["true"]
#: A correctness bound on waiting for the thread, not a performance target.
WAIT_SECONDS = 20.0


def eventually(check: Callable[[], bool]) -> None:
    give_up = time.monotonic() + WAIT_SECONDS
    while not check():
        assert time.monotonic() < give_up, "not within the bound"
        time.sleep(0.05)


@pytest.fixture
def executor(make_executor: ExecutorFactory) -> Executor:
    started = make_executor()
    started.start()
    return started


@pytest.fixture
def thread(executor: Executor) -> Iterator[ExecutorThread]:
    running = ExecutorThread(executor)
    running.start()
    yield running
    running.stop(WAIT_SECONDS)


def test_a_handed_over_submission_is_written_and_launched(
        thread: ExecutorThread, database_url: str) -> None:
    # When the caller hands a submission over
    thread.submit([TaskSubmission(key("a"), CMD)])
    # Then the thread writes its row and sends its launch message
    eventually(lambda: any(r.enqueued_at is not None for r in rows(database_url)))
    assert row_of(database_url, key("a")).state == "queued"
    assert thread.in_flight == 0
    assert thread.take().refusals == []


def test_stopping_writes_what_was_handed_over(
        executor: Executor, database_url: str) -> None:
    # Given a thread that has been handed submissions
    thread = ExecutorThread(executor)
    thread.start()
    thread.submit([TaskSubmission(key("a"), CMD), TaskSubmission(key("b"), CMD)])
    # When it is stopped at once
    thread.stop(WAIT_SECONDS)
    # Then both were written before it stopped
    assert {r.task_id for r in rows(database_url)} == {"a", "b"}
    assert thread.in_flight == 0


def test_a_submit_the_db_refuses_is_logged_and_retried_not_lost(
        thread: ExecutorThread, database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    # Given a DB refusing every new task row
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE task_instances ADD CONSTRAINT refuse_all "
                             "CHECK (false) NOT VALID"))
    try:
        with caplog.at_level(logging.WARNING, logger="podfleet.executor"):
            # When a submission is handed over
            thread.submit([TaskSubmission(key("a"), CMD)])
            # Then the refusal is logged and the submission kept in flight
            eventually(lambda: "retrying in" in caplog.text)
        assert thread.in_flight == 1
        assert rows(database_url) == []
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE task_instances DROP CONSTRAINT refuse_all"))
        engine.dispose()
    # ... and once the DB accepts rows again, it is written
    eventually(lambda: thread.in_flight == 0)
    assert row_of(database_url, key("a")).state == "queued"


def test_an_invalid_submission_comes_back_as_a_refusal(
        thread: ExecutorThread, database_url: str) -> None:
    # When a valid and an invalid submission are handed over together
    thread.submit([TaskSubmission(key("a"), CMD), TaskSubmission(key("b"), [])])
    # Then the valid one is written and the invalid one is refused with its reason
    ready = Ready()

    def refused() -> bool:
        ready.refusals.extend(thread.take().refusals)
        return bool(ready.refusals)

    eventually(refused)
    assert [r.key for r in ready.refusals] == [key("b")]
    assert "command" in ready.refusals[0].reason
    assert {r.task_id for r in rows(database_url)} == {"a"}


def test_a_fenced_executor_stops_applying_and_the_caller_is_told(
        make_executor: ExecutorFactory, database_url: str) -> None:
    # Given an executor driven by its thread, whose tasks an heir adopted
    clock = Clock()
    slow = make_executor(clock=clock, executor_id="exec-slow")
    slow.start()
    slow.submit(key("a"), CMD)
    heir = make_executor(clock=clock, executor_id="exec-heir")
    age_heartbeat(database_url, "exec-slow", 3600)
    heir.start()
    clock.advance(3600)  # the slow executor's next heartbeat finds its record adopted
    thread = ExecutorThread(slow)
    thread.start()
    try:
        # When the caller takes what is ready
        # Then it learns the executor was fenced
        def fenced() -> bool:
            try:
                thread.take()
            except ExecutorFenced:
                return True
            return False

        eventually(fenced)
    finally:
        thread.stop(WAIT_SECONDS)


def test_a_deferred_submission_is_built_on_the_thread_and_a_failed_build_is_refused(
        thread: ExecutorThread, database_url: str) -> None:
    # When one deferred submission builds and another's build raises
    def broken() -> TaskSubmission:
        raise ValueError("executor_config: bad")

    thread.submit([Deferred(key("a"), lambda: TaskSubmission(key("a"), CMD)),
                   Deferred(key("b"), broken)])
    # Then the first is written and the second refused with the build's message
    ready = Ready()

    def refused() -> bool:
        ready.refusals.extend(thread.take().refusals)
        return bool(ready.refusals)

    eventually(refused)
    assert [(r.key, r.reason) for r in ready.refusals] == [(key("b"), "executor_config: bad")]
    eventually(lambda: thread.in_flight == 0)
    assert {r.task_id for r in rows(database_url)} == {"a"}


def test_a_burst_handed_over_in_one_step_is_listed_on_the_thread(
        thread: ExecutorThread, database_url: str) -> None:
    # When the caller hands over a batch of three of which the listing keeps two (the third
    # was taken back before the thread got to it)
    thread.submit(DeferredBatch(3, lambda: [TaskSubmission(key("a"), CMD),
                                            Deferred(key("b"), lambda: TaskSubmission(
                                                key("b"), CMD))]))
    assert thread.in_flight == 3
    # Then the two are written and nothing stays in flight
    eventually(lambda: {r.task_id for r in rows(database_url)} == {"a", "b"})
    eventually(lambda: thread.in_flight == 0)


def test_the_callers_look_up_for_events_runs_on_the_thread_before_it_sees_them(
        executor: Executor, database_url: str, redis_url: str) -> None:
    # Given a thread whose caller looks events up (as Airflow's executor reads its DB)
    looked_up: list[tuple[str, dict[TaskKey, TaskState]]] = []

    def look_up(events: Events) -> None:
        looked_up.append((threading.current_thread().name,
                          {k: s for k, (s, _) in events.items()}))

    thread = ExecutorThread(executor, on_events=look_up)
    thread.start()
    try:
        # When task a's pod succeeds
        _succeed_task_a(thread, database_url, redis_url)
        # Then the look-up ran on the thread, with the event, before the caller took it
        assert ("podfleet-executor", {key("a"): TaskState.SUCCESS}) in looked_up
    finally:
        thread.stop(WAIT_SECONDS)


def test_an_event_reaches_the_caller_when_it_comes_not_at_the_next_timed_sync(
        executor: Executor, database_url: str, redis_url: str) -> None:
    # Given a thread whose timed sync is far away (after its first, at start)
    thread = ExecutorThread(executor, sync_interval=3600.0)
    thread.start()
    try:
        # When task a's pod succeeds
        seen = _succeed_task_a(thread, database_url, redis_url)
        # Then the entry on the event stream brought a sync on, and the caller saw it
        assert seen[key("a")][0] == TaskState.SUCCESS
    finally:
        thread.stop(WAIT_SECONDS)


def test_stopping_does_not_wait_out_a_long_timed_sync(executor: Executor) -> None:
    # Given a thread idle until a timed sync an hour away
    thread = ExecutorThread(executor, sync_interval=3600.0)
    thread.start()
    time.sleep(0.2)
    # When it is stopped with a long timeout
    started = time.monotonic()
    thread.stop(WAIT_SECONDS)
    # Then it stopped at once instead of at the timeout
    assert time.monotonic() - started < WAIT_SECONDS / 2


def _succeed_task_a(thread: ExecutorThread, database_url: str, redis_url: str) -> Events:
    """Hand task a over, publish its pod's success, and return the events the caller took
    until it was among them."""
    thread.submit([TaskSubmission(key("a"), CMD)])
    eventually(lambda: any(r.task_id == "a" for r in rows(database_url)))
    publish(redis_url, [event(row_of(database_url, key("a")), TaskState.SUCCESS)])
    seen: Events = {}

    def taken() -> bool:
        seen.update(thread.take().events)
        return key("a") in seen
    eventually(taken)
    return seen


def test_a_burst_handed_over_in_the_callers_turn_is_listed_once_the_turn_ends(
        thread: ExecutorThread, database_url: str) -> None:
    listed_at: list[float] = []

    def listing() -> list[Handed]:
        listed_at.append(time.monotonic())
        return [TaskSubmission(key("a"), CMD)]

    # Given a caller in its turn (Airflow's heartbeat) that hands a burst over
    with thread.caller_turn():
        thread.submit(DeferredBatch(1, listing))
        time.sleep(0.3)
        # Then the thread does not list it while the call goes on
        assert listed_at == []
        ended = time.monotonic()
    # And lists and writes it once the call has returned
    eventually(lambda: {r.task_id for r in rows(database_url)} == {"a"})
    assert listed_at[0] >= ended


def test_a_caller_that_stays_in_its_turn_holds_the_thread_back_only_so_long(
        thread: ExecutorThread, database_url: str) -> None:
    # Given a caller that never leaves its turn
    with thread.caller_turn():
        thread.submit([TaskSubmission(key("a"), CMD)])
        # Then the thread writes what it was handed all the same
        eventually(lambda: {r.task_id for r in rows(database_url)} == {"a"})
