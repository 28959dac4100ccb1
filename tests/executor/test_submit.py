"""submit: validation writes nothing on bad input; many tasks go in one transaction and one
Redis round trip of signed batches; an enqueue that fails leaves rows that get relaunched."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from executor_support import SIGNING_KEY, ExecutorFactory, key, row_of, rows
from kubernetes import client as k8s

from podfleet.broker import LAUNCH_ACTOR_NAME, queue_sizes
from podfleet.contracts.messages import LaunchBatch, open_envelope
from podfleet.contracts.signing import MessageSigner
from podfleet.contracts.states import TaskState
from podfleet.executor import DuplicateSubmission, Executor, InvalidSubmission, TaskSubmission
from podfleet.local.redis_server import RedisServer

GOOD = ["python", "-c", "print(1)"]


def ready_messages(executor: Executor) -> int:
    return queue_sizes(executor.broker, executor.settings.launch.queue)["ready"]


def sent_batches(executor: Executor) -> list[LaunchBatch]:
    """Every launch message waiting in the broker, verified and parsed as a launcher would."""
    import dramatiq

    namespace = executor.broker.namespace
    queue = executor.settings.launch.queue
    client = executor.broker.client
    ids = client.lrange(f"{namespace}:{queue}", 0, -1)
    batches = []
    for message_id in ids:
        data = client.hget(f"{namespace}:{queue}.msgs", message_id)
        message = dramatiq.Message.decode(data)
        assert message.actor_name == LAUNCH_ACTOR_NAME
        batches.append(open_envelope(message.args[0], MessageSigner(SIGNING_KEY.encode())))
    return batches


def test_submit_many_writes_every_row_in_one_transaction_and_batches_messages(
        make_executor: ExecutorFactory, database_url: str) -> None:
    # Given a started executor with batches of 50
    executor = make_executor(batch_size=50)
    executor.start()
    commits: list[int] = []
    sa.event.listen(executor.engine, "commit", lambda _conn: commits.append(1))
    # When 1,000 tasks are submitted at once
    launch_ids = executor.submit_many(
        [TaskSubmission(key("t", i), GOOD) for i in range(1000)])
    # Then 1,000 QUEUED rows exist, written by one commit (plus one marking them sent)
    stored = rows(database_url)
    assert len(stored) == 1000 and {r.state for r in stored} == {"queued"}
    assert len(commits) == 2
    # And 20 signed messages carry exactly those launches, each once
    batches = sent_batches(executor)
    assert len(batches) == 20 and ready_messages(executor) == 20
    carried = [r.launch_id for b in batches for r in b.requests]
    assert sorted(carried) == sorted(launch_ids)
    # And every row is marked as sent
    assert all(r.enqueued_at is not None for r in stored)


def test_a_launch_request_carries_what_the_pod_needs(
        make_executor: ExecutorFactory, namespace: str) -> None:
    # Given an executor; When one task is submitted with a queue, config and deadline
    executor = make_executor()
    launch_id = executor.submit(key("one"), GOOD, queue="gpu",
                                executor_config={"pod_override": {"metadata": {
                                    "labels": {"team": "a"}}}},
                                deadline=2_000_000_000.0)
    # Then the message names the try, its launch, the command and the owner
    (request,) = sent_batches(executor)[0].requests
    assert (request.key, request.launch_id, list(request.command)) == (
        key("one"), launch_id, GOOD)
    assert (request.executor_id, request.namespace, request.queue, request.deadline) == (
        executor.executor_id, namespace, "gpu", 2_000_000_000.0)
    assert request.executor_config["pod_override"]["metadata"]["labels"] == {"team": "a"}


def test_a_task_with_its_own_watched_namespace_is_launched_there(
        make_executor: ExecutorFactory, namespace: str) -> None:
    # Given an executor whose watcher watches the default namespace and "team-a", and whose
    # tasks may run in both
    executor = make_executor(watch_namespaces=f"{namespace},team-a",
                             task_namespaces=f"{namespace},team-a")
    # When a task asks for team-a
    executor.submit(key("own-ns"), GOOD, executor_config={"namespace": "team-a"})
    # Then its launch names team-a, not the executor's default
    (request,) = sent_batches(executor)[0].requests
    assert request.namespace == "team-a"


def test_a_task_in_a_namespace_nobody_watches_is_refused(
        make_executor: ExecutorFactory, database_url: str, namespace: str) -> None:
    # Its pod would run, but no watcher would ever report it finished
    executor = make_executor()
    with pytest.raises(InvalidSubmission, match="namespace 'elsewhere' is not watched"):
        executor.submit(key("lost"), GOOD, executor_config={
            "pod_override": k8s.V1Pod(metadata=k8s.V1ObjectMeta(namespace="elsewhere"))})
    assert rows(database_url) == []


BAD_INPUTS: dict[str, dict[str, Any]] = {
    "empty command": {"command": []},
    "command is a string": {"command": "echo hi"},
    "command item not a string": {"command": ["echo", 1]},
    "dag id with a space": {"key": ("bad dag", "t", "r", -1, 1)},
    "negative try number": {"key": ("dag", "t", "r", -1, -3)},
    "not a key at all": {"key": "dag.t"},
    "executor config not a dict": {"executor_config": ["pod"]},
    "executor config unknown field": {"executor_config": {"no_such_field": 1}},
    "queue empty": {"queue": ""},
    "deadline not a number": {"deadline": "tomorrow"},
}


@pytest.mark.parametrize("bad", list(BAD_INPUTS), ids=list(BAD_INPUTS))
def test_an_invalid_task_is_refused_and_nothing_is_written(
        make_executor: ExecutorFactory, database_url: str, bad: str) -> None:
    # Given a batch of valid tasks with one bad task in the middle
    executor = make_executor()
    fields: dict[str, Any] = {"key": key("bad"), "command": GOOD, **BAD_INPUTS[bad]}
    batch = [TaskSubmission(key("ok-1"), GOOD), TaskSubmission(**fields),
             TaskSubmission(key("ok-2"), GOOD)]
    # When it is submitted, Then it is refused with the reason
    with pytest.raises(InvalidSubmission) as refused:
        executor.submit_many(batch)
    assert "task 1" in str(refused.value) and "nothing was written" in str(refused.value)
    # And no row and no message exist
    assert rows(database_url) == []
    assert ready_messages(executor) == 0


def test_the_same_try_twice_in_one_submit_is_refused(
        make_executor: ExecutorFactory, database_url: str) -> None:
    executor = make_executor()
    with pytest.raises(InvalidSubmission, match="appears twice"):
        executor.submit_many([TaskSubmission(key("a"), GOOD), TaskSubmission(key("a"), GOOD)])
    assert rows(database_url) == []


def test_a_try_already_active_is_refused_and_nothing_else_is_written(
        make_executor: ExecutorFactory, database_url: str) -> None:
    # Given a task try that is queued
    executor = make_executor()
    executor.submit(key("a"), GOOD)
    # When it is submitted again together with a new task
    with pytest.raises(DuplicateSubmission, match="already queued"):
        executor.submit_many([TaskSubmission(key("new"), GOOD),
                              TaskSubmission(key("a"), GOOD)])
    # Then the new task was not written either, and only the first message exists
    assert [r.task_id for r in rows(database_url)] == ["a"]
    assert ready_messages(executor) == 1


def test_a_finished_try_submitted_again_gets_a_fresh_launch(
        make_executor: ExecutorFactory, database_url: str) -> None:
    # Given a try that failed (a rescheduled sensor reruns with the same try number)
    executor = make_executor()
    first = executor.submit(key("sensor"), GOOD)
    engine = sa.create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE task_instances SET state='failed', finished_at=1"))
    engine.dispose()
    # When it is submitted again
    second = executor.submit(key("sensor"), ["true"])
    # Then the same row is queued again under a new launch id with the new command
    row = row_of(database_url, key("sensor"))
    assert (row.state, row.launch_id, row.command, row.finished_at) == (
        "queued", second, ["true"], None)
    assert second != first


def test_parallelism_holds_back_tasks_until_slots_open(
        make_executor: ExecutorFactory, database_url: str) -> None:
    # Given parallelism 3 and one task per message
    executor = make_executor(parallelism=3, batch_size=1)
    # When 5 tasks are submitted
    executor.submit_many([TaskSubmission(key("p", i), GOOD) for i in range(5)])
    # Then 3 are sent and 2 wait, visibly
    assert ready_messages(executor) == 3
    assert executor.open_slots == 0
    assert set(executor.queued_tasks) == {key("p", 3), key("p", 4)}
    assert executor.running == {key("p", i) for i in range(3)}
    # When two of the sent tasks finish (the DB is the only count of slots)
    engine = sa.create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(sa.text(
            "UPDATE task_instances SET state='success' WHERE map_index IN (0, 1)"))
    engine.dispose()
    executor.sync()
    # Then the two waiting tasks are sent, oldest first, and nothing else
    assert ready_messages(executor) == 5
    assert executor.queued_tasks == {}
    assert executor.open_slots == 0


def test_submit_keeps_first_come_order_when_tasks_already_wait(
        make_executor: ExecutorFactory) -> None:
    # Given parallelism 1, one task sent and one waiting
    executor = make_executor(parallelism=1, batch_size=1)
    executor.submit_many([TaskSubmission(key("o", 0), GOOD), TaskSubmission(key("o", 1), GOOD)])
    # When a slot opens and a newer task is submitted
    executor.revoke(key("o", 0))
    executor.submit(key("o", 2), GOOD)
    # Then the older waiting task got the slot, not the newcomer
    assert set(executor.queued_tasks) == {key("o", 2)}


def test_enqueue_failure_leaves_queued_rows_that_the_next_sync_sends(
        make_executor: ExecutorFactory, private_redis: RedisServer, database_url: str) -> None:
    # Given an executor whose Redis has died
    executor = make_executor(redis_url=private_redis.url)
    executor.sync()
    private_redis.kill()
    # When tasks are submitted
    launch_ids = executor.submit_many([TaskSubmission(key("r", i), GOOD) for i in range(3)])
    # Then they are durably QUEUED, not yet sent
    stored = rows(database_url)
    assert [r.launch_id for r in stored] == launch_ids
    assert all(r.state == "queued" and r.enqueued_at is None for r in stored)
    # When Redis is back (empty) and the executor syncs
    private_redis.start()
    executor.sync()
    # Then the same launches are in the broker, and the rows are marked sent
    assert sorted(r.launch_id for b in sent_batches(executor) for r in b.requests) == sorted(
        launch_ids)
    assert all(r.enqueued_at is not None for r in rows(database_url))


def test_enqueue_failure_rows_are_relaunched_by_the_next_executors_start(
        make_executor: ExecutorFactory, private_redis: RedisServer, database_url: str) -> None:
    # Given tasks submitted while Redis was down, by an executor that then stopped
    first = make_executor(redis_url=private_redis.url)
    private_redis.kill()
    launch_ids = first.submit_many([TaskSubmission(key("s", i), GOOD) for i in range(3)])
    first.terminate()
    private_redis.start()
    # When another executor starts
    second = make_executor(redis_url=private_redis.url)
    second.start()
    # Then it owns the tasks and has sent their launches
    stored = rows(database_url)
    assert {r.executor_id for r in stored} == {second.executor_id}
    assert all(r.state == TaskState.QUEUED.value and r.enqueued_at for r in stored)
    assert sorted(r.launch_id for b in sent_batches(second) for r in b.requests) == sorted(
        launch_ids)
