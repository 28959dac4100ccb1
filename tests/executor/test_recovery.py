"""Recovery: start-up reconciliation from one pod list, adoption of dead executors (and never
of live ones), revoke, and rebuilding after Redis restarted empty."""

from __future__ import annotations

import time

import pytest
from executor_support import (
    Clock,
    ExecutorFactory,
    age_heartbeat,
    create_pod,
    deleted,
    event,
    key,
    publish,
    row_of,
    rows,
)

from podfleet.broker import queue_sizes
from podfleet.contracts.naming import EXECUTOR_LABEL, pod_name
from podfleet.contracts.states import TaskState
from podfleet.executor import Executor, ExecutorFenced, TaskSubmission
from podfleet.executor.db import TaskInstance
from podfleet.kube.client import KubeClient
from podfleet.local.redis_server import RedisServer
from podfleet.simulator.cluster import fate
from podfleet.simulator.server import ThreadSimulator

CMD = ["true"]


def wait_for_phase(kube: KubeClient, namespace: str, name: str, phase: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pod = kube.get_pod(namespace, name)
        if pod and (pod.get("status") or {}).get("phase") == phase:
            return
        time.sleep(0.02)
    raise AssertionError(f"pod {name} never reached {phase}")


def pod_requests(simulator: ThreadSimulator, verb: str) -> int:
    """How many ``verb`` requests on pods the simulator has answered, whatever their code."""
    assert simulator.runtime is not None
    return sum(n for (asked, resource, _code), n in simulator.runtime.stats.requests.items()
               if asked == verb and resource == "pods")


def relaunched(make_executor: ExecutorFactory, database_url: str) -> tuple[Executor, TaskInstance]:
    """An executor whose task ``a`` was relaunched after the queued timeout, and the row of
    its first, obsolete launch."""
    clock = Clock()
    executor = make_executor(clock=clock, queued_timeout_seconds=600,
                             heartbeat_timeout_seconds=10_000)
    executor.start()
    executor.submit(key("a"), CMD)
    old = row_of(database_url, key("a"))
    clock.advance(601)
    executor.sync()
    assert row_of(database_url, key("a")).launch_id != old.launch_id
    return executor, old


def test_start_completes_finished_pods_and_resends_podless_tasks_with_one_list(
        make_executor: ExecutorFactory, database_url: str, kube: KubeClient, namespace: str,
        simulator: ThreadSimulator) -> None:
    # Given a stopped executor's tasks: one pod succeeded, one failed, one never created
    first = make_executor(executor_id="exec-old")
    first.submit_many([TaskSubmission(key(name), CMD) for name in ("ok", "bad", "lost")])
    first.terminate()
    for name, pod_fate in (("ok", {fate.DURATION: "0"}),
                              ("bad", {fate.DURATION: "0", fate.EXIT_CODE: "3"})):
        row = row_of(database_url, key(name))
        create_pod(kube, namespace, row, pod_fate)
        wait_for_phase(kube, namespace, row.pod_name or pod_name(row.key, row.launch_id),
                       "Succeeded" if name == "ok" else "Failed")
    lists_before = pod_requests(simulator, "list")
    # When a new executor starts
    second = make_executor()
    second.start()
    # Then finished pods completed their tasks, with the reason of the failure
    assert row_of(database_url, key("ok")).state == "success"
    bad = row_of(database_url, key("bad"))
    assert (bad.state, bad.reason) == ("failed", "Error (exit code 3)")
    # And the podless task was sent again under the same launch id (a redelivery meets 409)
    lost = row_of(database_url, key("lost"))
    assert lost.state == "queued" and lost.executor_id == second.executor_id
    # And it took one pod list for the reconciliation plus one to find pods to relabel
    assert pod_requests(simulator, "list") - lists_before == 2
    assert second.get_event_buffer()[key("ok")] == (TaskState.SUCCESS, None)


def test_a_dead_executors_tasks_pods_and_stream_are_adopted(
        make_executor: ExecutorFactory, database_url: str, kube: KubeClient, namespace: str,
        redis_url: str) -> None:
    # Given an executor that launched a task, then stopped heartbeating
    clock = Clock()
    dead = make_executor(clock=clock, executor_id="exec-dead")
    dead.start()
    dead.submit(key("a"), CMD)
    row = row_of(database_url, key("a"))
    created = create_pod(kube, namespace, row)
    # ... and whose stream still holds an event nobody applied
    publish(redis_url, [event(row, TaskState.RUNNING)])
    # When another executor starts after the heartbeat timeout (61 s later)
    clock.advance(61)
    age_heartbeat(database_url, "exec-dead", 61)
    heir = make_executor(clock=clock, executor_id="exec-heir")
    heir.start()
    # Then it owns the task, applied the dead executor's pending event, relabelled the pod
    adopted = row_of(database_url, key("a"))
    assert (adopted.executor_id, adopted.state) == ("exec-heir", "running")
    pod = kube.get_pod(namespace, created["metadata"]["name"])
    assert pod is not None and pod["metadata"]["labels"][EXECUTOR_LABEL] == "exec-heir"
    # And events still routed to the dead executor's stream reach the heir
    publish(redis_url, [event(adopted, TaskState.SUCCESS, executor_id="exec-dead")])
    heir.sync()
    assert row_of(database_url, key("a")).state == "success"
    assert heir.get_event_buffer()[key("a")][0] is TaskState.SUCCESS
    # And the dead executor, should it wake up, may change nothing any more
    with pytest.raises(ExecutorFenced):
        dead.sync()


def test_a_live_executor_is_never_adopted(
        make_executor: ExecutorFactory, database_url: str) -> None:
    # Given an executor with a fresh heartbeat and a task
    clock = Clock()
    live = make_executor(clock=clock, executor_id="exec-live")
    live.start()
    live.submit(key("a"), CMD)
    # When another executor starts inside the heartbeat timeout (60 s; 45 leaves room for
    # the real seconds this test takes on the database's clock)
    age_heartbeat(database_url, "exec-live", 45)
    other = make_executor(clock=clock, executor_id="exec-other")
    other.start()
    # Then it adopted nothing
    assert other.adopt_dead_executors() == []
    assert row_of(database_url, key("a")).executor_id == "exec-live"
    live.sync()  # and the live one carries on unfenced


def test_two_heirs_racing_for_one_dead_executor_adopt_it_once(
        make_executor: ExecutorFactory, database_url: str) -> None:
    clock = Clock()
    dead = make_executor(clock=clock, executor_id="exec-dead")
    dead.submit_many([TaskSubmission(key("t", i), CMD) for i in range(5)])
    age_heartbeat(database_url, "exec-dead", 61)
    one = make_executor(clock=clock, executor_id="exec-one")
    two = make_executor(clock=clock, executor_id="exec-two")
    one.sync()
    two.sync()
    assert sorted(one.adopt_dead_executors() + two.adopt_dead_executors()) == ["exec-dead"]
    assert len({r.executor_id for r in rows(database_url)}) == 1


def test_revoke_deletes_the_pod_and_marks_the_task_revoked(
        make_executor: ExecutorFactory, database_url: str, kube: KubeClient,
        namespace: str) -> None:
    # Given a running task
    executor = make_executor()
    executor.start()
    executor.submit(key("a"), CMD)
    created = create_pod(kube, namespace, row_of(database_url, key("a")))
    # When it is revoked
    assert executor.revoke(key("a")) is True
    # Then its pod is deleted (gone, or terminating gracefully if its container had started)
    assert deleted(kube, namespace, created["metadata"]["name"])
    # And the task is REVOKED, reported to the scheduler
    assert row_of(database_url, key("a")).state == "revoked"
    assert executor.get_event_buffer() == {key("a"): (TaskState.REVOKED, "revoked")}
    # And revoking it again, or a task without a pod, is harmless
    assert executor.revoke(key("a")) is False
    executor.submit(key("b"), CMD)
    assert executor.revoke(key("b")) is True


def test_a_pod_created_after_revoke_is_deleted_when_it_reports(
        make_executor: ExecutorFactory, database_url: str, kube: KubeClient, namespace: str,
        redis_url: str) -> None:
    # Given a task revoked while its launch message was still in the broker
    executor = make_executor()
    executor.start()
    executor.submit(key("a"), CMD)
    executor.revoke(key("a"))
    row = row_of(database_url, key("a"))
    # When the launcher creates the pod anyway and reports it
    create_pod(kube, namespace, row)
    publish(redis_url, [event(row, TaskState.LAUNCHED, at=row.finished_at + 1)])
    executor.sync()
    # Then the pod is deleted and the task stays REVOKED
    assert deleted(kube, namespace, pod_name(row.key, row.launch_id))
    assert row_of(database_url, key("a")).state == "revoked"


def test_redis_restarted_empty_is_rebuilt_from_the_db_and_the_cluster(
        make_executor: ExecutorFactory, database_url: str, kube: KubeClient, namespace: str,
        private_redis: RedisServer) -> None:
    # Given tasks in every stage: a pod that will succeed, one that will fail, a pod still
    # running, and a task whose launch message was never consumed
    executor = make_executor(redis_url=private_redis.url)
    executor.start()
    names = ("done", "oom", "busy", "unsent")
    executor.submit_many([TaskSubmission(key(n), CMD) for n in names])
    fates = {"done": {fate.DURATION: "0"}, "oom": {fate.DURATION: "0", fate.OOM: "true"},
             "busy": {}}
    for name, pod_fate in fates.items():
        create_pod(kube, namespace, row_of(database_url, key(name)), pod_fate)
    for name, phase in (("done", "Succeeded"), ("oom", "Failed"), ("busy", "Running")):
        row = row_of(database_url, key(name))
        wait_for_phase(kube, namespace, pod_name(row.key, row.launch_id), phase)
    # When Redis restarts empty: every event, message and consumer group is gone
    private_redis.kill()
    private_redis.start()
    executor.sync()
    # Then finished pods completed their tasks, the running one is RUNNING
    states = {n: row_of(database_url, key(n)) for n in names}
    assert states["done"].state == "success"
    assert (states["oom"].state, states["oom"].reason) == ("failed", "OOMKilled (exit code 137)")
    assert states["busy"].state == "running"
    # And the task that had no pod is in the broker again, under its launch id
    assert states["unsent"].state == "queued" and states["unsent"].enqueued_at
    assert queue_sizes(executor.broker, executor.settings.launch.queue)["ready"] == 1
    # And the stream works again for what comes next
    publish_url = private_redis.url
    publish(publish_url, [event(states["busy"], TaskState.SUCCESS)])
    executor.sync()
    assert row_of(database_url, key("busy")).state == "success"


def test_a_pod_of_an_obsolete_launch_is_deleted_when_it_reports(
        make_executor: ExecutorFactory, database_url: str, kube: KubeClient, namespace: str,
        redis_url: str) -> None:
    # Given a task relaunched after the queued timeout (so its first launch is obsolete)
    executor, old = relaunched(make_executor, database_url)
    # When the old launch's message still creates its pod, and the pod reports
    create_pod(kube, namespace, old)
    publish(redis_url, [event(old, TaskState.RUNNING)])
    executor.sync()
    # Then that pod is deleted, and the task's current launch is untouched
    assert deleted(kube, namespace, pod_name(old.key, old.launch_id))
    assert row_of(database_url, key("a")).state == "queued"


def test_end_drains_then_stops_and_reports_whether_everything_finished(
        make_executor: ExecutorFactory, database_url: str, redis_url: str) -> None:
    # Given an executor with one task still running
    executor = make_executor()
    executor.start()
    executor.submit(key("a"), CMD)
    # When end() is given no time, Then it reports unfinished work and stops
    assert executor.end(timeout=0) is False
    # And a fresh executor that sees the task finish ends cleanly
    heir = make_executor()
    heir.start()
    row = row_of(database_url, key("a"))
    assert row.executor_id == heir.executor_id  # the stopped one's task was adopted
    publish(redis_url, [event(row, TaskState.SUCCESS, executor_id=executor.executor_id)])
    assert heir.end(timeout=5) is True


def test_a_pod_of_an_obsolete_launch_gets_one_delete_however_often_it_reports(
        make_executor: ExecutorFactory, database_url: str, kube: KubeClient, namespace: str,
        redis_url: str, simulator: ThreadSimulator) -> None:
    # Given a task relaunched after the queued timeout, whose first launch's pod appears
    executor, old = relaunched(make_executor, database_url)
    create_pod(kube, namespace, old)
    deletes_before = pod_requests(simulator, "delete")
    # When that pod reports again and again, over several syncs (launcher and watcher, and
    # a replay)
    for state in (TaskState.LAUNCHED, TaskState.RUNNING, TaskState.RUNNING):
        publish(redis_url, [event(old, state)])
        executor.sync()
    # Then it was asked to be deleted exactly once, and is gone
    assert pod_requests(simulator, "delete") - deletes_before == 1
    assert deleted(kube, namespace, pod_name(old.key, old.launch_id))
