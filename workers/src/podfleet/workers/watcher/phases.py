"""What the watcher publishes about a pod: pure functions from pod JSON to task events.

The watcher keeps, per pod, the last thing it published about it (a :class:`Published`
record, stored in Redis beside the resourceVersion). Every observation of a pod - a watch
event, a row of a relist, or its absence from a relist - goes through :func:`observe` or
:func:`vanished` together with that record, and yields at most one new task event and the
record to store next. Because the decision depends on the record and not on which event
carried the pod, a replayed watch event, a relist after 410 or a restarted watcher publishes
nothing twice, and a change missed while nobody watched is published exactly once. What a pod
means for its task is not decided here: :func:`podfleet.contracts.judgement.judge` decides it,
for the watcher and the executor alike.

Nothing here does I/O, so every mapping is unit-tested without a cluster.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

from podfleet.contracts.events import EventKind, EventSource, TaskEvent
from podfleet.contracts.judgement import Verdict, judge, judge_unseen_deletion
from podfleet.contracts.keys import InvalidTaskKey, TaskKey
from podfleet.contracts.naming import task_identity
from podfleet.contracts.pod_status import start_latency
from podfleet.contracts.states import TaskState

Json = Mapping[str, Any]

class Stage(StrEnum):
    """The last thing the watcher published about one pod (one letter: it is stored per pod)."""

    PENDING = "P"    # seen, nothing published yet
    RUNNING = "R"    # RUNNING published
    SUCCEEDED = "S"  # SUCCESS published
    FAILED = "F"     # FAILED published
    REQUEUED = "Q"   # REQUEUE published (the pod is gone)

    @property
    def is_final(self) -> bool:
        """Nothing more will be published about this pod."""
        return self in _FINAL


_FINAL = frozenset({Stage.SUCCEEDED, Stage.FAILED, Stage.REQUEUED})


@dataclass(frozen=True, slots=True)
class PodIdentity:
    """Which launch of which task a pod runs, and where the pod is."""

    key: TaskKey
    launch_id: str
    executor_id: str
    namespace: str
    name: str


@dataclass(frozen=True, slots=True)
class Published:
    """The per-pod record the watcher stores: the stage reached, and, until the stage is final,
    the pod's identity (so a pod that vanishes unwatched can still be reported)."""

    stage: Stage
    identity: PodIdentity | None = None

    def encode(self) -> str:
        """``S``/``F``/``Q`` for final stages; ``P``/``R`` followed by the identity as JSON."""
        if self.stage.is_final or self.identity is None:
            return self.stage.value
        ident = self.identity
        return self.stage.value + orjson.dumps(
            [ident.namespace, ident.name, ident.executor_id, ident.launch_id,
             ident.key.as_list()]).decode()

    @classmethod
    def decode(cls, raw: str | bytes) -> Published | None:
        """Inverse of :meth:`encode`; None for a value this version cannot read."""
        text = raw.decode() if isinstance(raw, bytes) else raw
        try:
            stage = Stage(text[:1])
        except ValueError:
            return None
        if len(text) == 1:
            return cls(stage)
        try:
            ns, name, executor_id, launch_id, key = orjson.loads(text[1:])
            return cls(stage, PodIdentity(TaskKey.from_list(key), str(launch_id),
                                          str(executor_id), str(ns), str(name)))
        except (ValueError, TypeError, InvalidTaskKey):
            return cls(stage)


@dataclass(frozen=True, slots=True)
class Transition:
    """The outcome of one observation: the event to publish (if any) and the record to keep
    (``None``: forget the pod, it is gone)."""

    event: TaskEvent | None
    after: Published | None


def identity_of(pod: Json) -> PodIdentity | None:
    """The pod's task identity from its annotations/labels; None for a pod that is not ours."""
    found = task_identity(dict(pod))
    if found is None:
        return None
    key, launch_id, executor_id = found
    meta = pod.get("metadata") or {}
    return PodIdentity(key, launch_id, executor_id, str(meta.get("namespace") or ""),
                       str(meta.get("name") or ""))


def _event(ident: PodIdentity, uid: str, verdict: Verdict, detail: dict[str, Any],
           now: float) -> TaskEvent:
    """The task event announcing ``verdict`` (a requeue, or a move to its state)."""
    kind = EventKind.REQUEUE if verdict.requeue else EventKind.STATE
    return TaskEvent(key=ident.key, launch_id=ident.launch_id, executor_id=ident.executor_id,
                     kind=kind, source=EventSource.WATCHER,
                     state=None if verdict.requeue else verdict.state,
                     failure=verdict.failure, pod_name=ident.name, namespace=ident.namespace,
                     pod_uid=uid or None, occurred_at=now, detail=detail)


# The record kept after publishing a verdict that ends the pod's story.
_FINAL_STAGE = {TaskState.SUCCESS: Stage.SUCCEEDED, TaskState.FAILED: Stage.FAILED,
                TaskState.QUEUED: Stage.REQUEUED}


def observe(pod: Json, prior: Published | None, *, deleted: bool,
            fatal_reasons: frozenset[str], now: float | None = None) -> Transition | None:
    """Decide what one observation of ``pod`` publishes, given what was published before.

    ``deleted`` is True for a DELETED watch event (``pod`` is then its last state). Returns
    None for a pod that carries no podfleet identity (not ours; nothing to do). What the pod
    means for its task is :func:`~podfleet.contracts.judgement.judge`'s verdict; this decides
    only whether that verdict is news.
    """
    if prior is not None and prior.stage.is_final:
        # Everything has been said; a deletion only lets the record go. (Only podfleet's
        # pods have records, so the pod's identity need not be read again.)
        return Transition(None, None if deleted else prior)
    when = time.time() if now is None else now
    ident = identity_of(pod)
    if ident is None:
        return None
    uid = str((pod.get("metadata") or {}).get("uid") or "")
    was_running = prior is not None and prior.stage is Stage.RUNNING
    verdict = judge(pod, fatal_reasons, gone=deleted, ran=was_running)
    if verdict.state is TaskState.LAUNCHED:
        # Not running yet (or an unclear phase): nothing to say until it is.
        return Transition(None, prior if prior is not None else Published(Stage.PENDING, ident))
    if verdict.state is TaskState.RUNNING:
        if was_running:
            return Transition(None, prior)
        return Transition(_event(ident, uid, verdict, _details(pod, prior), when),
                          Published(Stage.RUNNING, ident))
    detail = _details(pod, prior)
    if verdict.state is TaskState.SUCCESS:
        detail["exit_code"] = 0
    after = None if deleted else Published(_FINAL_STAGE[verdict.state])
    return Transition(_event(ident, uid, verdict, detail, when), after)


def vanished(uid: str, prior: Published, now: float | None = None) -> Transition:
    """A pod in the store but absent from a relist: it was deleted while nobody watched.

    Its last state is unknown; what was published decides
    (:func:`~podfleet.contracts.judgement.judge_unseen_deletion`): never started → REQUEUE;
    published RUNNING → FAILED (it may have finished, but nobody can say how); final → just
    forget it.
    """
    when = time.time() if now is None else now
    ident = prior.identity
    if prior.stage.is_final or ident is None:
        return Transition(None, None)
    verdict = judge_unseen_deletion(ran=prior.stage is Stage.RUNNING)
    return Transition(_event(ident, uid, verdict, {}, when), None)


def _details(pod: Json, prior: Published | None) -> dict[str, Any]:
    """Node, and - the first time the pod is seen started - its start latency."""
    detail: dict[str, Any] = {}
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        detail["node"] = node
    if prior is None or prior.stage is Stage.PENDING:
        latency = start_latency(pod)
        if latency is not None:
            detail["start_latency_s"] = latency
    return detail
