"""What a create came to: each pod's outcome as a task event, counted, and published.

The rules, per pod (docs/architecture.md, "The launch path", says why):

- past its deadline → FAILED "expired", nothing created (unless an earlier delivery already
  created it, which a GET finds);
- created (201) → LAUNCHED with the pod's uid; AlreadyExists (409) → LAUNCHED with
  ``detail.already_exists`` — pod names are deterministic per launch, so a redelivered
  message never makes a second pod;
- rejected (400, 422, and other 4xx that a retry cannot fix: RBAC 403, a PriorityClass that
  does not exist (403 "no PriorityClass with name …"), missing namespace) → FAILED with the API
  server's own message;
- 403 "exceeded quota" → not an attempt: FAILED at once when the pod asks more than a
  quota's ``hard`` (it can never fit), otherwise *parked* on the namespace's waiting list
  (:mod:`podfleet.workers.quota`) with a WAITING event that tells the executor why; the
  launcher hands it back to the broker to look again for room;
- 429, 5xx, a 409 that is not AlreadyExists, timeouts, connection errors
  → retried with exponential backoff and jitter, honouring Retry-After, until
  ``settings.launch.max_attempts`` attempts, then FAILED with the last reason;
- a launch another delivery already finished → LAUNCHED if its pod still exists, otherwise
  nothing (``replayed``: its events went out the first time).

Decided events wait in an :class:`Outbox` and go to Redis in one round trip, at most
:data:`MAX_EVENT_DELAY_S` after the oldest was decided.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any

from podfleet.contracts.clusters import DEFAULT_CLUSTER
from podfleet.contracts.events import EventKind, EventSource, TaskEvent, publish_events
from podfleet.contracts.failure import Failure
from podfleet.contracts.messages import LaunchRequest
from podfleet.contracts.redis_keys import RedisKeys
from podfleet.contracts.states import TaskState
from podfleet.kube.client import KubeClient
from podfleet.kube.errors import KubeError, NotFound, QuotaExceeded, Unreachable
from podfleet.monitoring.metrics import (
    LAUNCH_LATENCY,
    LAUNCH_RETRIES,
    PODS_CREATED,
    TASK_EVENTS_PUBLISHED,
    LaunchRetryReason,
    PodCreateOutcome,
)
from podfleet.settings import Settings
from podfleet.workers.launch_records import CREATED, FAILED, LaunchRecords, PriorLaunch
from podfleet.workers.quota import QuotaGate, quota_message, waiting_message

logger = logging.getLogger("podfleet.workers.launcher")

# Longest an outcome may wait for the rest of its message before it is published anyway.
MAX_EVENT_DELAY_S = 0.05


@dataclass(slots=True)
class PendingPod:
    """One request of a message that is not decided yet, and what its attempts have shown."""

    request: LaunchRequest
    pod: dict[str, Any]
    attempts: int = 0
    last_reason: str = ""
    not_before: float = 0.0  # time.monotonic()
    uncertain: bool = False  # an attempt got no answer: the pod may exist
    parked: bool = False  # a full quota refused it: it goes back to wait (LaunchReport.parked)
    #: The cluster it is placed on (podfleet.workers.launcher.placement), and those this
    #: delivery tried already.
    cluster: str = DEFAULT_CLUSTER
    tried: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class CreateResult:
    """What one create call answered, before it is judged."""

    kind: str  # created | exists | rejected | retry | stale
    pod: dict[str, Any] | None = None
    error: KubeError | Unreachable | None = None
    sent_at: float = 0.0


@dataclass(slots=True)
class LaunchReport:
    """What one message came to (for logs, tests and the benchmark)."""

    created: int = 0
    already_exists: int = 0
    failed: int = 0
    expired: int = 0
    requeued: int = 0
    replayed: int = 0
    retries: int = 0
    # Parked on a full quota (403 "exceeded quota"): the launcher hands these back.
    parked: list[PendingPod] = field(default_factory=list)
    # Found pinned to another cluster just before their create (another delivery sent it
    # there): the launcher places them there (``PendingPod.cluster`` says where).
    elsewhere: list[PendingPod] = field(default_factory=list)
    events: list[TaskEvent] = field(default_factory=list)


def describe(error: KubeError | Unreachable) -> str:
    """The reason a task fails with: the API server's reason and message."""
    if isinstance(error, KubeError):
        return f"{error.reason} ({error.status}): {error.message}"
    return f"{error.reason}: {error.message}"


def answered_status(error: KubeError | Unreachable) -> int:
    """The HTTP status of ``error`` as event details record it: 0 when no answer came."""
    return error.status if isinstance(error, KubeError) else 0


def may_have_made_pod(error: KubeError | Unreachable) -> bool:
    """Whether a create that failed with ``error`` may still have made its pod: no answer
    came though the request was sent, or the server failed (5xx) after maybe storing it."""
    if isinstance(error, Unreachable):
        return error.sent
    return error.status >= 500


def retry_label(error: KubeError | Unreachable) -> LaunchRetryReason:
    """The ``reason`` label a retry of ``error`` is counted under."""
    if isinstance(error, Unreachable):
        return LaunchRetryReason.TIMEOUT if error.timed_out else LaunchRetryReason.CONNECTION
    if isinstance(error, QuotaExceeded):
        return LaunchRetryReason.QUOTA
    try:
        return LaunchRetryReason(str(error.status))
    except ValueError:  # a 5xx without a member of its own
        return LaunchRetryReason.OTHER_SERVER_ERROR


class Outcomes:
    """Judges create results and turns every decision into the task's event, counted."""

    def __init__(self, settings: Settings, kube: KubeClient,
                 quota: QuotaGate | None = None, *, cluster: str = DEFAULT_CLUSTER) -> None:
        self.settings = settings
        self.kube = kube
        self.quota = quota
        #: The cluster whose creates this judges: every event it makes names it.
        self.cluster = cluster
        self.max_attempts = settings.launch.max_attempts
        # Metric children, looked up once: ``labels()`` takes a lock and builds a key per call.
        self._outcomes: dict[tuple[str, PodCreateOutcome], Any] = {}
        self._latencies: dict[str, Any] = {}

    def judge(self, item: PendingPod, result: CreateResult, report: LaunchReport
              ) -> TaskEvent | None:
        """The event that decides ``item``, or None when it is to be retried (its next
        attempt's time set in ``item.not_before``). A launch parked on a full quota
        (``item.parked``) is done here either way: a WAITING event or None."""
        request = item.request
        if result.kind == "stale":
            return None  # not an attempt: it goes again with a fresh permit
        attempts = item.attempts + 1
        if result.kind == "created":
            assert result.pod is not None
            return self.launched(item, report, result.pod, attempts=attempts,
                                 sent_at=result.sent_at)
        error = result.error
        assert error is not None
        if result.kind == "exists":
            return self.launched(item, report, self.existing(item), attempts=attempts,
                                 sent_at=result.sent_at, already_exists=True)
        if result.kind == "rejected":
            return self.failed(request, describe(error), report, outcome=PodCreateOutcome.INVALID,
                               detail={"status": answered_status(error), "attempts": attempts})
        if isinstance(error, QuotaExceeded):
            return self.quota_refused(item, error, report)
        if isinstance(error, Unreachable) and not error.sent:
            # No connection, so nothing was sent: not an attempt. The launch waits for its
            # cluster (or moves to another), as a launch waits for quota.
            item.last_reason = describe(error)
            report.retries += 1
            LAUNCH_RETRIES.labels(reason=retry_label(error)).inc()
            item.not_before = time.monotonic() + self.backoff(attempts, None)
            return None
        item.attempts = attempts
        item.last_reason = describe(error)
        item.uncertain = item.uncertain or may_have_made_pod(error)
        if attempts >= self.max_attempts:
            existing = self.existing(item) if item.uncertain else None
            if existing:
                return self.launched(item, report, existing, attempts=attempts,
                                     sent_at=result.sent_at, already_exists=True)
            return self.failed(
                request, f"gave up after {attempts} attempts: {item.last_reason}", report,
                outcome=PodCreateOutcome.FAILED,
                detail={"status": answered_status(error), "attempts": attempts})
        report.retries += 1
        LAUNCH_RETRIES.labels(reason=retry_label(error)).inc()
        item.not_before = time.monotonic() + self.backoff(attempts, error.retry_after)
        return None

    def quota_refused(self, item: PendingPod, error: QuotaExceeded, report: LaunchReport
                      ) -> TaskEvent | None:
        """A 403 "exceeded quota": FAILED at once if the pod can never fit, else parked (not
        an attempt) with a WAITING event when it newly joins its namespace's waiting list."""
        request = item.request
        never = self.quota.never_fits(request.namespace, item.pod) if self.quota else None
        if never is not None:
            return self.failed(request, f"{describe(error)} (the pod asks more than the quota "
                               "allows at all)", report, outcome=PodCreateOutcome.INVALID,
                               detail={"status": error.status, "attempts": item.attempts + 1})
        item.last_reason = describe(error)
        item.parked = True
        report.parked.append(item)
        LAUNCH_RETRIES.labels(reason=LaunchRetryReason.QUOTA).inc()
        joined = self.quota.park(request, item.pod) if self.quota else True
        if not joined:
            return None
        return self.waiting(request, quota_message(error.message))

    def waiting(self, request: LaunchRequest, quota_text: str) -> TaskEvent:
        """The WAITING event of a launch parked on its namespace's quota."""
        message = waiting_message(request.namespace, quota_text)
        logger.info("task %s %s", request.key, message)
        return TaskEvent(
            key=request.key, launch_id=request.launch_id, executor_id=request.executor_id,
            kind=EventKind.WAITING, source=EventSource.LAUNCHER, state=TaskState.QUEUED,
            failure=Failure("QuotaExceeded", message=message), namespace=request.namespace,
            cluster=self.cluster)

    def backoff(self, attempts: int, retry_after: float | None) -> float:
        """Seconds before attempt ``attempts + 1``: exponential, jittered, at least what the
        API server's Retry-After asked (within four times the longest backoff)."""
        base = self.settings.launch.backoff_seconds * float(2 ** (attempts - 1))
        delay = min(self.settings.launch.backoff_max_seconds, base)
        delay *= random.uniform(0.5, 1.0)  # jitter: retries from many pods spread out
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.settings.launch.backoff_max_seconds * 4))
        return delay

    def existing(self, item: PendingPod) -> dict[str, Any] | None:
        """The pod of ``item`` if it exists (to report its uid); None on any doubt."""
        try:
            return self.kube.get_pod(item.request.namespace, item.pod["metadata"]["name"])
        except (KubeError, Unreachable):
            return None

    def probe(self, item: PendingPod) -> tuple[bool | None, dict[str, Any] | None]:
        """Whether ``item``'s pod exists on this cluster, by a GET: ``(True, pod)``,
        ``(False, None)`` when the API server answered that it does not, ``(None, None)``
        when it gave no clear answer (then nobody knows)."""
        try:
            pod = self.kube.get_pod(item.request.namespace, item.pod["metadata"]["name"])
        except NotFound:
            return False, None
        except (KubeError, Unreachable):
            return None, None
        return (True, pod) if pod else (False, None)

    def settle_finished(self, items: list[PendingPod], prior: dict[str, PriorLaunch],
                        report: LaunchReport) -> list[TaskEvent]:
        """Events for launches another delivery finished: LAUNCHED if the pod still exists."""
        events: list[TaskEvent] = []
        for item in items:
            done = prior[item.request.launch_id]
            existing = self.existing(item) if done.state == CREATED else None
            if existing:
                events.append(self.launched(item, report, existing, attempts=item.attempts,
                                            sent_at=0.0, already_exists=True))
            else:
                # Its pod was created and is gone (finished and deleted), or it failed: a
                # redelivery or a replay; the task's events were published the first time.
                report.replayed += 1
                self._count(item.request.namespace, PodCreateOutcome.REPLAYED)
                logger.info("launch %s of %s already %s: nothing to create",
                            item.request.launch_id, item.request.key, done.state)
        return events

    def launched(self, item: PendingPod, report: LaunchReport, pod: dict[str, Any] | None, *,
                 attempts: int, sent_at: float, already_exists: bool = False) -> TaskEvent:
        request = item.request
        namespace = request.namespace
        detail: dict[str, Any] = {"attempts": attempts, "sent_at": sent_at}
        if already_exists:
            detail["already_exists"] = True
            report.already_exists += 1
            self._count(namespace, PodCreateOutcome.ALREADY_EXISTS)
        else:
            report.created += 1
            self._count(namespace, PodCreateOutcome.CREATED)
            latency = self._latencies.get(namespace)
            if latency is None:
                latency = self._latencies[namespace] = LAUNCH_LATENCY.labels(
                    namespace=namespace)
            latency.observe(max(0.0, time.time() - request.queued_at))
        return _event(request, TaskState.LAUNCHED, self.cluster, pod=pod,
                      name=item.pod.get("metadata", {}).get("name"), detail=detail)

    def failed(self, request: LaunchRequest, reason: str, report: LaunchReport, *,
               outcome: PodCreateOutcome, detail: dict[str, Any] | None = None) -> TaskEvent:
        report.failed += 1
        self._count(request.namespace, outcome)
        logger.warning("task %s failed to launch: %s", request.key, reason)
        return _event(request, TaskState.FAILED, self.cluster, reason=reason, detail=detail)

    def expired(self, item: PendingPod, report: LaunchReport) -> TaskEvent:
        """A request past its deadline: FAILED "expired", unless its pod exists already."""
        # An earlier delivery may have created the pod before the deadline passed.
        existing = self.existing(item)
        if existing:
            return self.launched(item, report, existing, attempts=item.attempts,
                                 sent_at=0.0, already_exists=True)
        report.expired += 1
        report.failed += 1
        self._count(item.request.namespace, PodCreateOutcome.EXPIRED)
        return _event(item.request, TaskState.FAILED, self.cluster, reason="expired",
                      detail={"deadline": item.request.deadline})

    def _count(self, namespace: str, outcome: PodCreateOutcome) -> None:
        child = self._outcomes.get((namespace, outcome))
        if child is None:
            child = self._outcomes[(namespace, outcome)] = PODS_CREATED.labels(
                cluster=self.cluster, namespace=namespace, outcome=outcome)
        child.inc()


def _event(request: LaunchRequest, state: TaskState, cluster: str, *,
           reason: str | None = None,
           pod: dict[str, Any] | None = None, name: str | None = None,
           detail: dict[str, Any] | None = None) -> TaskEvent:
    meta = (pod or {}).get("metadata") or {}
    return TaskEvent(
        key=request.key, launch_id=request.launch_id, executor_id=request.executor_id,
        kind=EventKind.STATE, source=EventSource.LAUNCHER, state=state,
        failure=Failure(reason) if reason else None,
        pod_name=meta.get("name") or name, namespace=request.namespace,
        pod_uid=meta.get("uid"), detail=detail or {}, cluster=cluster)


class Outbox:
    """One message's events decided but not yet published, and when the oldest was decided."""

    def __init__(self, redis_client: Any, keys: RedisKeys, records: LaunchRecords,
                 report: LaunchReport) -> None:
        self.redis = redis_client
        self.keys = keys
        self.records = records
        self.report = report
        self.events: list[TaskEvent] = []
        self.since = 0.0  # time.monotonic()

    def add(self, events: list[TaskEvent]) -> None:
        if events and not self.events:
            self.since = time.monotonic()
        self.events.extend(events)

    def overdue(self) -> bool:
        return bool(self.events) and time.monotonic() - self.since >= MAX_EVENT_DELAY_S

    def flush(self) -> None:
        """Publish the events in one Redis round trip, records first."""
        events = self.events
        if not events:
            return
        # Records first: a crash between the two leaves a record the next delivery trusts.
        self.records.finish(
            (e.launch_id, CREATED if e.state is TaskState.LAUNCHED else FAILED, e.pod_uid,
             e.cluster)
            for e in events if e.state in (TaskState.LAUNCHED, TaskState.FAILED))
        publish_events(self.redis, self.keys, events)
        self.events = []
        self.report.events.extend(events)
        states: dict[str, int] = {}
        for event in events:
            state = event.state.value if event.state else ""
            states[state] = states.get(state, 0) + 1
        for state, count in states.items():
            TASK_EVENTS_PUBLISHED.labels(source=EventSource.LAUNCHER.value,
                                         state=state).inc(count)
