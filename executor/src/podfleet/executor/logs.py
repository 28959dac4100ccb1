"""Reading a task try's log: from its pod while the pod exists, from the archive after.

The watcher archives each pod's log just before it deletes the pod, so at any moment a
finished task's log is in at least one of the two places: first the pod is asked, and a 404
(the pod is gone) sends the reader to the archive. :meth:`TaskLogs.follow` streams a
running pod's log as it is written, waiting first for a queued task's pod to start.

Only the task's container is read (the pod's first, as the archiver reads it): a pod with a
sidecar, its own or a service mesh's, has several, and the API refuses a log request that
does not name one.
"""

from __future__ import annotations

import codecs
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from podfleet.contracts.clusters import DEFAULT_CLUSTER
from podfleet.contracts.keys import TaskKey
from podfleet.contracts.naming import pod_name
from podfleet.contracts.redis_keys import RedisKeys
from podfleet.contracts.states import TaskState
from podfleet.executor.db import TaskInstance
from podfleet.kube.client import KubeClient, container_not_started
from podfleet.kube.errors import KubeError, NotFound
from podfleet.logs.archive import LogArchive, tail_lines
from podfleet.logs.failures import ArchiveFailures
from podfleet.pods.factory import base_container_name
from podfleet.redis_client import connect as connect_redis
from podfleet.settings import Settings

#: How often :meth:`TaskLogs.follow` looks again for a pod that does not run yet.
FOLLOW_POLL_SECONDS = 0.5
#: How long :meth:`TaskLogs.follow` waits, by default, for a pod that does not run yet.
FOLLOW_WAIT_SECONDS = 600.0


class TaskLogUnavailable(LookupError):
    """No log can be shown for that task: unknown try, no pod yet, or nothing archived."""


@dataclass(frozen=True, slots=True)
class LogTarget:
    """One task try's latest launch, as the metadata DB knows it."""

    key: TaskKey
    launch_id: str
    namespace: str
    pod_name: str
    state: TaskState
    #: The cluster its pod was placed in (the default cluster until it is placed).
    cluster: str = DEFAULT_CLUSTER


@dataclass(frozen=True, slots=True)
class TaskLog:
    """A task try's log text and where it was read: the live pod or the archive."""

    key: TaskKey
    launch_id: str
    text: str
    source: Literal["pod", "archive"]


class TaskLogs:
    """Finds task tries in the DB and reads their logs from the pod or the archive."""

    def __init__(self, sessions: sessionmaker[Session], kube: Callable[[str], KubeClient],
                 archive: LogArchive | None, namespace: str,
                 failures: ArchiveFailures | None = None) -> None:
        self._sessions = sessions
        self._kube = kube
        self.archive = archive
        self.namespace = namespace
        # Where the watcher records archive writes that failed (None: not looked up).
        self.failures = failures

    @classmethod
    def for_settings(cls, settings: Settings, sessions: sessionmaker[Session],
                     kube: Callable[[str], KubeClient]) -> TaskLogs:
        """The reader ``settings`` describe: their archive (if any) and default namespace."""
        location = settings.logs.archive
        return cls(sessions, kube, LogArchive.open(location) if location else None,
                   settings.kubernetes.namespace, archive_failures(settings))

    def read_key(self, key: TaskKey, *, tail: int | None = None) -> TaskLog:
        """Task try ``key``'s log: :meth:`read` of its :meth:`target`."""
        return self.read(self.target(key), tail=tail)

    # --- finding the task -------------------------------------------------------------------

    def target(self, key: TaskKey) -> LogTarget:
        """The try ``key`` exactly; raises TaskLogUnavailable when the DB does not know it."""
        return self._one(_key_filter(key), f"no task try {key} in the metadata DB")

    def latest_try(self, dag_id: str, task_id: str, run_id: str,
                   map_index: int = -1) -> LogTarget:
        """The highest try of that task instance."""
        where = sa.and_(TaskInstance.dag_id == dag_id, TaskInstance.task_id == task_id,
                        TaskInstance.run_id == run_id, TaskInstance.map_index == map_index)
        suffix = f"[{map_index}]" if map_index >= 0 else ""
        return self._one(where, f"no task {dag_id}.{task_id}{suffix} {run_id} in the "
                                f"metadata DB")

    def by_launch_or_pod(self, name: str) -> LogTarget:
        """The try whose launch id or pod name is ``name``."""
        where = sa.or_(TaskInstance.launch_id == name, TaskInstance.pod_name == name)
        return self._one(where, f"no task with launch id or pod name {name!r} in the "
                                f"metadata DB")

    def _one(self, where: sa.ColumnElement[bool], missing: str) -> LogTarget:
        with self._sessions() as session:
            row = session.scalars(sa.select(TaskInstance).where(where).order_by(
                TaskInstance.try_number.desc()).limit(1)).first()
            if row is None:
                raise TaskLogUnavailable(missing)
            key = TaskKey(row.dag_id, row.task_id, row.run_id, row.map_index, row.try_number)
            return LogTarget(key, row.launch_id, row.pod_namespace or self.namespace,
                             row.pod_name or pod_name(key, row.launch_id), row.task_state,
                             row.cluster or DEFAULT_CLUSTER)

    # --- reading ----------------------------------------------------------------------------

    def read(self, target: LogTarget, *, tail: int | None = None) -> TaskLog:
        """The log so far: the pod's, or the archived one once the pod is gone."""
        try:
            container = self._task_container(target)
            data = self._kube(target.cluster).read_pod_log(
                target.namespace, target.pod_name, container=container, tail_lines=tail)
            return TaskLog(target.key, target.launch_id, _decode(data), "pod")
        except KubeError as exc:
            if not isinstance(exc, NotFound) and not container_not_started(exc):
                raise
            archived = self._archived(target, tail)
            if archived is not None:
                return archived
            raise TaskLogUnavailable(self._why_none(target, exc)) from None

    def follow(self, target: LogTarget, *, tail: int | None = None,
               poll_seconds: float = FOLLOW_POLL_SECONDS,
               wait_seconds: float | None = FOLLOW_WAIT_SECONDS,
               waiting: Callable[[str], None] | None = None) -> Iterator[str]:
        """The log as it is written, until the container exits (``kubectl logs -f``).

        A task whose pod does not exist or run yet is waited for (the DB is read again on
        each look, so a relaunch under a new launch id is followed too), at most
        ``wait_seconds`` in all (None: for ever), then TaskLogUnavailable says what never
        came; ``waiting`` hears what is waited for, each time that changes. A finished task
        whose pod is gone yields its archived log and ends.
        """
        give_up_at = None if wait_seconds is None else time.monotonic() + wait_seconds
        told = ""
        while True:
            try:
                container = self._task_container(target)
                chunks = self._kube(target.cluster).stream_pod_log(
                    target.namespace, target.pod_name, container=container, follow=True,
                    tail_lines=tail)
                decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
                for chunk in chunks:
                    text = decoder.decode(chunk)
                    if text:
                        yield text
                rest = decoder.decode(b"", final=True)
                if rest:
                    yield rest
                return
            except KubeError as exc:
                if not isinstance(exc, NotFound) and not container_not_started(exc):
                    raise
                if target.state.is_terminal:
                    archived = self._archived(target, tail)
                    if archived is None:
                        raise TaskLogUnavailable(self._why_none(target, exc)) from None
                    yield archived.text
                    return
                why = _why_none(target, exc)
                if give_up_at is not None and time.monotonic() >= give_up_at:
                    raise TaskLogUnavailable(
                        f"gave up after {wait_seconds:g}s waiting: {why}") from None
                if waiting is not None and why != told:
                    waiting(f"waiting: {why}")
                    told = why
            time.sleep(poll_seconds)
            target = self.target(target.key)

    def _task_container(self, target: LogTarget) -> str:
        """The name of the task's container in the target's pod; raises the API's 404 when
        the pod does not exist."""
        pod = self._kube(target.cluster).get_pod(target.namespace, target.pod_name)
        if pod is None:
            raise NotFound(404, "NotFound", f'pods "{target.pod_name}" not found')
        return base_container_name(pod)

    def _archived(self, target: LogTarget, tail: int | None) -> TaskLog | None:
        if self.archive is None:
            return None
        found = self.archive.read(target.key, target.launch_id)
        if found is None:
            return None
        return TaskLog(target.key, target.launch_id, _decode(tail_lines(found.data, tail)),
                       "archive")

    def _why_none(self, target: LogTarget, exc: KubeError) -> str:
        """Why no log can be shown; a recorded failed archive write says so first."""
        if self.archive is not None and self.failures is not None:
            failure = self.failures.read(target.launch_id)
            if failure is not None:
                return (f"task {target.key} (pod {target.namespace}/{target.pod_name}): "
                        f"{failure.describe()}")
        return _why_none(target, exc)


def archive_failures(settings: Settings) -> ArchiveFailures | None:
    """Where ``settings``' watchers record failed archive writes (None: no archive)."""
    if not settings.logs.archive:
        return None
    client = connect_redis(settings.redis.url, socket_timeout=5, socket_connect_timeout=5)
    return ArchiveFailures(client, RedisKeys(settings.redis.prefix))


def _key_filter(key: TaskKey) -> sa.ColumnElement[bool]:
    return sa.and_(TaskInstance.dag_id == key.dag_id, TaskInstance.task_id == key.task_id,
                   TaskInstance.run_id == key.run_id, TaskInstance.map_index == key.map_index,
                   TaskInstance.try_number == key.try_number)


def _why_none(target: LogTarget, exc: KubeError) -> str:
    where = f"task {target.key} (pod {target.namespace}/{target.pod_name})"
    if container_not_started(exc):
        return f"{where}: its container has not started: {exc.message}"
    if target.state is TaskState.QUEUED:
        return f"{where} is queued: its pod does not exist yet"
    if target.state.is_terminal:
        return (f"{where} is {target.state.value}, its pod is gone and no log was archived "
                f"(it may never have started, archiving may be off, or it was pruned)")
    return f"{where}: the pod is gone and no log was archived yet"


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")
