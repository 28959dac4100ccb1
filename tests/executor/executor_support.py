"""Helpers of the executor's tests: a hand-moved clock, DB reads, events and pods."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import redis
import sqlalchemy as sa

from podfleet.broker import LAUNCH_ACTOR_NAME
from podfleet.contracts.events import EventKind, EventSource, TaskEvent, publish_events
from podfleet.contracts.failure import Failure
from podfleet.contracts.keys import TaskKey
from podfleet.contracts.messages import LaunchBatch, open_envelope
from podfleet.contracts.naming import pod_name, task_annotations, task_labels
from podfleet.contracts.redis_keys import RedisKeys
from podfleet.contracts.signing import MessageSigner
from podfleet.contracts.states import TaskState
from podfleet.executor import Executor
from podfleet.executor.db import ExecutorRecord, TaskInstance, make_engine
from podfleet.kube.client import KubeClient
from podfleet.simulator.cluster.config import ClusterConfig
from podfleet.simulator.config import SimulatorConfig
from podfleet.simulator.server import RunningSimulator, start_simulator

SIGNING_KEY = "executor-tests-signing-key-0123456789"


class Clock:
    """A clock the test moves by hand, so timeouts need no sleeping."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def start_held_simulator() -> RunningSimulator:
    """A two-node simulator whose pods start at once and run for an hour: the tests end them
    (or see them end) themselves."""
    cluster = ClusterConfig(nodes=2, schedule_delay_s=0.01, container_start_delay_s=0.01,
                            default_run_time_s=3600.0, termination_delay_s=0.01)
    return start_simulator(SimulatorConfig(default_termination_grace_period_s=1,
                                           cluster=cluster))


def age_heartbeat(database_url: str, executor_id: str, seconds: float) -> None:
    """Make ``executor_id``'s last heartbeat ``seconds`` older, on the database's clock
    (heartbeats are judged there, not on any executor's clock)."""
    engine = make_engine(database_url)
    with engine.begin() as connection:
        connection.execute(sa.update(ExecutorRecord).where(ExecutorRecord.id == executor_id)
                           .values(heartbeat_at=ExecutorRecord.heartbeat_at - seconds))
    engine.dispose()


def key(task: str = "t", map_index: int = -1, try_number: int = 1) -> TaskKey:
    return TaskKey("dag", task, "run-1", map_index, try_number)


def rows(database_url: str) -> list[TaskInstance]:
    engine = make_engine(database_url)
    with sa.orm.Session(engine) as session:
        found = list(session.scalars(sa.select(TaskInstance).order_by(TaskInstance.id)))
    engine.dispose()
    return found


def row_of(database_url: str, task_key: TaskKey) -> TaskInstance:
    matches = [r for r in rows(database_url) if r.key == task_key]
    assert len(matches) == 1, f"{task_key}: {len(matches)} rows"
    return matches[0]


def event(row: TaskInstance, state: TaskState | None, *, kind: EventKind = EventKind.STATE,
          launch_id: str | None = None, reason: str | None = None, at: float = 0.0,
          executor_id: str | None = None) -> TaskEvent:
    return TaskEvent(key=row.key, launch_id=launch_id or row.launch_id,
                     executor_id=executor_id or row.executor_id, kind=kind,
                     source=EventSource.WATCHER, state=state,
                     failure=Failure(reason) if reason else None,
                     pod_name=pod_name(row.key, launch_id or row.launch_id),
                     namespace=row.pod_namespace, occurred_at=at or 1_700_000_001.0)


def publish(redis_url: str, events: list[TaskEvent]) -> None:
    client = redis.Redis.from_url(redis_url)
    publish_events(client, RedisKeys(), events)
    client.close()


def publish_seen(redis_url: str, row: TaskInstance, state: TaskState, cluster: str,
           pod: dict[str, Any]) -> None:
    """Publish the watcher's event of ``state`` for ``pod``, as seen in ``cluster``."""
    publish(redis_url, [dataclasses.replace(event(row, state), cluster=cluster,
                                            pod_uid=pod["metadata"]["uid"],
                                            namespace=pod["metadata"]["namespace"])])


def create_pod(kube: KubeClient, namespace: str, row: TaskInstance,
               annotations: dict[str, str] | None = None,
               executor_id: str | None = None) -> dict[str, Any]:
    """Create the pod of ``row``'s current launch, as the launcher would."""
    owner = executor_id or row.executor_id
    body = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": pod_name(row.key, row.launch_id),
            "labels": task_labels(row.key, row.launch_id, owner),
            "annotations": {**task_annotations(row.key, row.launch_id, owner, row.queued_at),
                            **(annotations or {})},
        },
        "spec": {"restartPolicy": "Never",
                 "containers": [{"name": "base", "image": "busybox", "command": row.command}]},
    }
    return kube.create_pod(namespace, body)


#: A fixture that makes executors (see conftest.py ``make_executor``).
ExecutorFactory = Callable[..., Executor]


def deleted(kube: KubeClient, namespace: str, name: str) -> bool:
    """True when the pod is gone or terminating: a delete reached the API server (a pod whose
    container started is removed only after its graceful termination)."""
    pod = kube.get_pod(namespace, name)
    return pod is None or bool(pod["metadata"].get("deletionTimestamp"))


def sent_batches(executor: Executor, queue: str | None = None) -> list[LaunchBatch]:
    """The launch messages waiting on dramatiq queue ``queue`` (default: the default task
    queue's), verified and parsed as a launcher would."""
    import dramatiq

    namespace = executor.broker.namespace
    queue = queue or executor.settings.launch.queue
    client = executor.broker.client
    batches = []
    for message_id in client.lrange(f"{namespace}:{queue}", 0, -1):
        message = dramatiq.Message.decode(client.hget(f"{namespace}:{queue}.msgs", message_id))
        assert message.actor_name == LAUNCH_ACTOR_NAME
        batches.append(open_envelope(message.args[0], MessageSigner(SIGNING_KEY.encode())))
    return batches
