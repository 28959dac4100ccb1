"""sync: events from the stream change tasks once, in order of progress, acknowledged only
after the DB commit; REQUEUE, stuck-QUEUED timeouts and the watcher check."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import redis
import sqlalchemy as sa
from executor_support import (
    Clock,
    ExecutorFactory,
    age_heartbeat,
    event,
    key,
    publish,
    row_of,
)

from podfleet.broker import queue_sizes
from podfleet.contracts.events import EventKind
from podfleet.contracts.failure import Failure
from podfleet.contracts.messages import new_launch_id
from podfleet.contracts.redis_keys import EVENTS_GROUP, RedisKeys
from podfleet.contracts.states import TaskState
from podfleet.executor import DuplicateSubmission, Executor, ExecutorFenced, TaskSubmission

CMD = ["true"]


def stream_backlog(redis_url: str, executor: Executor) -> tuple[int, int]:
    """(entries left in the executor's stream, entries read but not acknowledged)."""
    client = redis.Redis.from_url(redis_url)
    stream = RedisKeys().events(executor.executor_id)
    left = client.xlen(stream)
    pending = client.xpending(stream, EVENTS_GROUP)["pending"]
    client.close()
    return left, pending


@pytest.fixture
def executor(make_executor: ExecutorFactory) -> Executor:
    started = make_executor()
    started.start()
    return started


def test_events_move_the_task_forward_and_fill_the_buffer(
        executor: Executor, database_url: str, redis_url: str) -> None:
    # Given a submitted task
    executor.submit(key("a"), CMD)
    row = row_of(database_url, key("a"))
    # When the launcher and the watcher report its life
    publish(redis_url, [event(row, TaskState.LAUNCHED), event(row, TaskState.RUNNING),
                        event(row, TaskState.SUCCESS)])
    applied = executor.sync()
    # Then the row went to SUCCESS, with each timestamp, and the stream is empty
    row = row_of(database_url, key("a"))
    assert applied == 3 and row.state == "success"
    assert row.launched_at and row.running_at and row.finished_at
    assert stream_backlog(redis_url, executor) == (0, 0)
    # And the scheduler reads the final state from the buffer, once
    assert executor.get_event_buffer() == {key("a"): (TaskState.SUCCESS, None)}
    assert executor.get_event_buffer() == {}


def test_the_time_from_a_pods_end_to_the_buffer_is_observed(
        executor: Executor, database_url: str, redis_url: str) -> None:
    # Given a submitted task
    from prometheus_client import REGISTRY

    def observed() -> tuple[float, float]:
        count = REGISTRY.get_sample_value("podfleet_task_report_latency_seconds_count")
        total = REGISTRY.get_sample_value("podfleet_task_report_latency_seconds_sum")
        return count or 0.0, total or 0.0

    executor.submit(key("a"), CMD)
    row = row_of(database_url, key("a"))
    before = observed()
    # When the watcher reports its pod ended 2 s ago and the executor applies it
    publish(redis_url, [event(row, TaskState.SUCCESS, at=time.time() - 2.0)])
    executor.sync()
    # Then one report latency of about those 2 s is observed
    count, total = observed()
    assert count == before[0] + 1
    assert 2.0 <= total - before[1] < 30.0


def test_a_replayed_event_changes_nothing(
        executor: Executor, database_url: str, redis_url: str) -> None:
    # Given a task that succeeded
    executor.submit(key("a"), CMD)
    row = row_of(database_url, key("a"))
    publish(redis_url, [event(row, TaskState.SUCCESS, at=1_700_000_050.0)])
    executor.sync()
    before = row_of(database_url, key("a"))
    # When the same event and an older RUNNING arrive again
    publish(redis_url, [event(row, TaskState.SUCCESS, at=1_700_000_099.0),
                        event(row, TaskState.RUNNING)])
    assert executor.sync() == 0
    # Then nothing changed
    after = row_of(database_url, key("a"))
    assert (after.state, after.finished_at, after.updated_at) == (
        before.state, before.finished_at, before.updated_at)


def test_out_of_order_events_only_move_forward(
        executor: Executor, database_url: str, redis_url: str) -> None:
    # Given a task; When RUNNING arrives before LAUNCHED
    executor.submit(key("a"), CMD)
    row = row_of(database_url, key("a"))
    publish(redis_url, [event(row, TaskState.RUNNING), event(row, TaskState.LAUNCHED)])
    executor.sync()
    # Then it is RUNNING: the late LAUNCHED did not move it back
    assert row_of(database_url, key("a")).state == "running"


def test_a_terminal_state_is_final(
        executor: Executor, database_url: str, redis_url: str) -> None:
    executor.submit(key("a"), CMD)
    row = row_of(database_url, key("a"))
    publish(redis_url, [event(row, TaskState.FAILED, reason="OOMKilled (exit code 137)"),
                        event(row, TaskState.SUCCESS)])
    executor.sync()
    final = row_of(database_url, key("a"))
    assert (final.state, final.reason) == ("failed", "OOMKilled (exit code 137)")


def test_a_failed_tasks_reason_is_its_failures_summary(
        executor: Executor, database_url: str, redis_url: str) -> None:
    import dataclasses

    # Given a task whose pod failed: exit code 3, with a termination message
    executor.submit(key("a"), CMD)
    row = row_of(database_url, key("a"))
    failure = Failure("Error", "container base exited with code 3", 3, "base", "disk full\n")
    publish(redis_url, [dataclasses.replace(event(row, TaskState.FAILED), failure=failure)])
    executor.sync()
    # Then its reason is the failure's summary, whatever route the failure took
    assert row_of(database_url, key("a")).reason == "Error (exit code 3): disk full"


def test_an_event_about_another_launch_is_ignored(
        executor: Executor, database_url: str, redis_url: str) -> None:
    # Given a task; When an event arrives about a launch id the row does not hold
    executor.submit(key("a"), CMD)
    row = row_of(database_url, key("a"))
    publish(redis_url, [event(row, TaskState.FAILED, launch_id=new_launch_id())])
    executor.sync()
    # Then the task is untouched, and the entry is acknowledged all the same
    assert row_of(database_url, key("a")).state == "queued"
    assert stream_backlog(redis_url, executor) == (0, 0)


def test_an_event_about_a_pod_with_another_uid_than_the_rows_is_ignored(
        executor: Executor, database_url: str, redis_url: str) -> None:
    import dataclasses

    # Given a task running in its pod
    executor.submit(key("a"), CMD)
    row = row_of(database_url, key("a"))
    own = dataclasses.replace(event(row, TaskState.RUNNING), pod_uid="uid-own")
    publish(redis_url, [own])
    executor.sync()
    # When another pod under the launch's name and labels (another uid) reports a failure
    publish(redis_url, [dataclasses.replace(event(row, TaskState.FAILED, reason="Error"),
                                            pod_uid="uid-copy")])
    executor.sync()
    # Then the task is as its own pod left it
    after = row_of(database_url, key("a"))
    assert (after.state, after.pod_uid, after.reason) == ("running", "uid-own", None)


def test_an_event_about_a_pod_under_another_name_is_ignored(
        executor: Executor, database_url: str, redis_url: str) -> None:
    import dataclasses

    # Given a task; When a pod with its labels but not its launch's name reports success
    executor.submit(key("a"), CMD)
    row = row_of(database_url, key("a"))
    publish(redis_url, [dataclasses.replace(event(row, TaskState.SUCCESS),
                                            pod_name="hand-made", pod_uid="uid-x")])
    executor.sync()
    # Then the task is untouched: a copy does not decide it
    after = row_of(database_url, key("a"))
    assert (after.state, after.pod_uid) == ("queued", None)


def test_a_malformed_entry_is_dropped_without_stopping_the_rest(
        executor: Executor, database_url: str, redis_url: str) -> None:
    executor.submit(key("a"), CMD)
    row = row_of(database_url, key("a"))
    client = redis.Redis.from_url(redis_url)
    client.xadd(RedisKeys().events(executor.executor_id), {"v": "1", "key": "nonsense"})
    client.close()
    publish(redis_url, [event(row, TaskState.RUNNING)])
    executor.sync()
    assert row_of(database_url, key("a")).state == "running"
    assert stream_backlog(redis_url, executor) == (0, 0)


class Crash(BaseException):
    """The process dying between the DB commit and the stream acknowledgement."""


def test_a_crash_between_commit_and_ack_replays_harmlessly(
        make_executor: ExecutorFactory, database_url: str, redis_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an executor that dies right after committing a batch of events
    first = make_executor(executor_id="exec-crashy")
    first.start()
    first.submit(key("a"), CMD)
    row = row_of(database_url, key("a"))
    publish(redis_url, [event(row, TaskState.RUNNING), event(row, TaskState.SUCCESS)])
    real_apply = first._apply_events

    def commit_then_die(*args: object) -> object:
        real_apply(*args)  # type: ignore[arg-type]
        raise Crash

    monkeypatch.setattr(first, "_apply_events", commit_then_die)
    with pytest.raises(Crash):
        first.sync()
    committed = row_of(database_url, key("a"))
    assert committed.state == "success"
    assert stream_backlog(redis_url, first)[1] == 2  # read, never acknowledged
    # When it restarts under the same id and reads its pending entries again
    second = make_executor(executor_id="exec-crashy")
    second.start()
    # Then the replay changed nothing, the entries are acknowledged now, and the restarted
    # scheduler still hears the outcome
    replayed = row_of(database_url, key("a"))
    assert (replayed.state, replayed.updated_at) == ("success", committed.updated_at)
    assert stream_backlog(redis_url, second) == (0, 0)
    assert second.get_event_buffer() == {key("a"): (TaskState.SUCCESS, None)}


def test_requeue_gives_the_task_a_new_launch_and_sends_it_again(
        executor: Executor, database_url: str, redis_url: str) -> None:
    # Given a launched task whose Pending pod was deleted before it ran
    executor.submit(key("a"), CMD)
    row = row_of(database_url, key("a"))
    publish(redis_url, [event(row, TaskState.LAUNCHED)])
    executor.sync()
    sent_before = queue_sizes(executor.broker, executor.settings.launch.queue)["ready"]
    # When the watcher reports it for requeue (twice, as a replay would)
    publish(redis_url, [event(row, None, kind=EventKind.REQUEUE),
                        event(row, None, kind=EventKind.REQUEUE)])
    executor.sync()
    # Then the task is QUEUED under a new launch id, second attempt, sent once more
    again = row_of(database_url, key("a"))
    assert again.state == "queued" and again.launch_id != row.launch_id
    assert again.attempt == 2 and again.enqueued_at is not None
    assert queue_sizes(executor.broker, executor.settings.launch.queue)["ready"] == (
        sent_before + 1)


@pytest.mark.parametrize(("action", "state"), [("relaunch", "queued"), ("fail", "failed")])
def test_a_task_stuck_queued_past_the_timeout_is_relaunched_or_failed(
        make_executor: ExecutorFactory, database_url: str, action: str, state: str) -> None:
    # Given a task sent to the launchers that never got a pod
    clock = Clock()
    executor = make_executor(clock=clock, queued_timeout_seconds=600,
                             queued_timeout_action=action, heartbeat_timeout_seconds=10_000)
    executor.start()
    executor.submit(key("stuck"), CMD)
    first = row_of(database_url, key("stuck"))
    # When the timeout passes
    clock.advance(601)
    executor.sync()
    # Then it is relaunched under a NEW launch id (or failed), with the reason recorded
    after = row_of(database_url, key("stuck"))
    assert after.state == state and "queued 600s without a pod" in (after.reason or "")
    if action == "relaunch":
        assert after.launch_id != first.launch_id and after.attempt == 2
        assert after.enqueued_at == clock.now
    else:
        assert executor.get_event_buffer()[key("stuck")][0] is TaskState.FAILED


def test_a_task_waiting_for_a_slot_does_not_time_out(
        make_executor: ExecutorFactory, database_url: str) -> None:
    # Given parallelism 1: one task sent, one waiting for the slot
    clock = Clock()
    executor = make_executor(clock=clock, parallelism=1, queued_timeout_seconds=600,
                             heartbeat_timeout_seconds=10_000)
    executor.start()
    executor.submit_many([TaskSubmission(key("w", 0), CMD), TaskSubmission(key("w", 1), CMD)])
    waiting = row_of(database_url, key("w", 1))
    # When the queued timeout passes
    clock.advance(601)
    executor.sync()
    # Then the waiting one kept its launch (parallelism is its visible reason to wait)
    assert row_of(database_url, key("w", 1)).launch_id == waiting.launch_id


def test_sync_starts_a_watcher_when_nobody_holds_the_lease(
        executor: Executor, redis_url: str) -> None:
    # Given no watcher lease in Redis; When the executor syncs twice
    executor.sync()
    executor.sync()
    # Then exactly one start message waits on the watcher's queue
    client = redis.Redis.from_url(redis_url)
    namespace = executor.broker.namespace
    assert client.llen(f"{namespace}:podfleet.watch") == 1
    client.close()


def test_sync_leaves_the_watcher_alone_while_the_lease_is_held(
        make_executor: ExecutorFactory, redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    client.hset(RedisKeys().watcher_lease, mapping={"holder": "w1", "token": "1"})
    executor = make_executor()
    executor.start()
    executor.sync()
    assert client.llen(f"{executor.broker.namespace}:podfleet.watch") == 0
    client.close()


def test_the_whole_cycle_works_on_the_embedded_sqlite_db(
        make_executor: ExecutorFactory, redis_url: str, tmp_path: object) -> None:
    # Given an executor on an SQLite file (the demo's default)
    from podfleet.executor.migrate import upgrade

    sqlite_url = f"sqlite:///{tmp_path}/podfleet.sqlite"
    upgrade(sqlite_url)
    executor = make_executor(database_url=sqlite_url)
    executor.start()
    # When a task is submitted, refused as a duplicate, finishes, and is submitted again
    executor.submit(key("a"), CMD)
    with pytest.raises(DuplicateSubmission):
        executor.submit(key("a"), CMD)
    row = row_of(sqlite_url, key("a"))
    publish(redis_url, [event(row, TaskState.RUNNING), event(row, TaskState.SUCCESS)])
    executor.sync()
    assert row_of(sqlite_url, key("a")).state == "success"
    relaunched = executor.submit(key("a"), CMD)
    # Then the row is queued again under its new launch id
    again = row_of(sqlite_url, key("a"))
    assert (again.state, again.launch_id) == ("queued", relaunched)


def run_once_before_the_bulk_update(engine: sa.Engine, action: Callable[[], None]) -> None:
    """Run ``action`` (another writer) between a batch's SELECT and its bulk UPDATE, once."""
    done: list[bool] = []

    def before_execute(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if not done and statement.startswith("UPDATE task_instances SET state="):
            done.append(True)
            action()

    sa.event.listen(engine, "before_cursor_execute", before_execute)


def test_a_row_changed_by_another_writer_meanwhile_is_not_overwritten(
        executor: Executor, make_executor: ExecutorFactory, database_url: str,
        redis_url: str) -> None:
    # Given a task whose RUNNING event is being applied, when another executor revokes the
    # task after the batch read the row and before it wrote it back
    executor.submit(key("a"), CMD)
    row = row_of(database_url, key("a"))
    other = make_executor(executor_id="exec-other")
    run_once_before_the_bulk_update(executor.engine, lambda: other.revoke(key("a")))
    publish(redis_url, [event(row, TaskState.RUNNING)])
    # When the sync applies it
    executor.sync()
    # Then the revoke stands (the batch lost the race, re-read the row, found it final) and
    # the entry is acknowledged all the same
    final = row_of(database_url, key("a"))
    assert (final.state, final.reason) == ("revoked", "revoked")
    assert stream_backlog(redis_url, executor) == (0, 0)
    assert key("a") not in executor.get_event_buffer()


def test_an_executor_adopted_while_applying_events_leaves_them_to_its_heir(
        make_executor: ExecutorFactory, database_url: str, redis_url: str) -> None:
    # Given an executor whose heartbeat has expired, in the middle of applying an event
    clock = Clock()
    slow = make_executor(clock=clock, executor_id="exec-slow")
    slow.start()
    slow.submit(key("a"), CMD)
    row = row_of(database_url, key("a"))
    heir = make_executor(clock=clock, executor_id="exec-heir")

    def adopt() -> None:
        age_heartbeat(database_url, "exec-slow", 61)
        heir.adopt_dead_executors()

    run_once_before_the_bulk_update(slow.engine, adopt)
    publish(redis_url, [event(row, TaskState.RUNNING)])
    # When the heir adopts its tasks between the batch's read and its write
    with pytest.raises(ExecutorFenced):
        slow.sync()
    # Then the slow executor wrote nothing and acknowledged nothing ...
    assert row_of(database_url, key("a")).state == "queued"
    assert stream_backlog(redis_url, slow) == (1, 1)
    # ... and the heir applies the event and reports it to its scheduler
    heir.sync()
    assert row_of(database_url, key("a")).state == "running"
    assert heir.get_event_buffer() == {key("a"): (TaskState.RUNNING, None)}
