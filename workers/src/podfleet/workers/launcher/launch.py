"""Turning one launch message into pods: verify, build, rate-limit, create, report.

The rules, per pod (PITFALLS.md lists what they prevent):

- past its deadline → FAILED "expired", nothing created (unless an earlier delivery already
  created it, which a GET finds);
- created (201) → LAUNCHED with the pod's uid; AlreadyExists (409) → LAUNCHED with
  ``detail.already_exists`` — pod names are deterministic per launch, so a redelivered
  message never makes a second pod;
- rejected (400, 422, and other 4xx that a retry cannot fix: RBAC 403, missing namespace) →
  FAILED with the API server's own message;
- 429, 5xx, 403 "exceeded quota", a 409 that is not AlreadyExists, timeouts, connection errors
  → retried with exponential backoff and jitter, honouring Retry-After, until
  ``settings.launch.max_attempts`` attempts, then FAILED with the last reason.

A message holds the tasks of one task queue (the executor routes them so), highest priority
first; the launcher keeps that order. Creates go out in slow-start rounds (1, 2, 4, … at
once), each round's size granted first by the cluster-wide rate limiter of the message's task
queue (:mod:`podfleet.contracts.queues`: its own bucket, or the default's); a retryable
failure halves the round and stops its growth, as Kubernetes' own controllers do, so a sick
API server or an exhausted quota is not hammered.
A worker thread only sleeps through short waits: when every pod left must wait longer than
:data:`LONG_WAIT_S`, or the message has used :data:`MESSAGE_BUDGET_S`, the leftovers go back to
the broker as a new signed message, delayed, carrying their attempt counts. The message is
acked (the function returns) only after every pod of it is decided or handed on, and every
event is published.

The creates of a round run as coroutines on the process's event loop
(:class:`podfleet.kube.aio.EventLoopThread`) through one aiohttp session: the worker thread
hands the whole round over and waits for its results, one handoff per round. Outcomes are
published to Redis in one round trip per message, or sooner — before any wait, and once the
oldest unpublished one is :data:`MAX_EVENT_DELAY_S` old — so none sits unpublished while the
thread waits.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis

from podfleet.contracts.events import EventKind, EventSource, TaskEvent, publish_events
from podfleet.contracts.messages import (
    WIRE_VERSION,
    InvalidMessage,
    LaunchBatch,
    LaunchRequest,
    open_envelope,
)
from podfleet.contracts.naming import pod_name
from podfleet.contracts.queues import QueueRoute, route_for
from podfleet.contracts.redis_keys import RedisKeys
from podfleet.contracts.signing import MessageSigner
from podfleet.contracts.states import TaskState
from podfleet.kube.aio import DEFAULT_CONCURRENCY, AsyncKubeClient, EventLoopThread
from podfleet.kube.client import KubeApiError, KubeClient
from podfleet.monitoring.metrics import (
    KUBE_REQUEST_DURATION,
    KUBE_REQUESTS,
    LAUNCH_BATCH_SIZE,
    LAUNCH_LATENCY,
    LAUNCH_RETRIES,
    PODS_CREATED,
    TASK_EVENTS_PUBLISHED,
)
from podfleet.pods.factory import PodFactory
from podfleet.settings import Settings
from podfleet.workers.launch_records import CREATED, FAILED, LaunchRecords, PriorLaunch
from podfleet.workers.middleware.dead_letter import DeadLetter
from podfleet.workers.rate_limits import ClusterRateLimiter, Grant

logger = logging.getLogger("podfleet.workers.launcher")

# A worker thread sleeps through retry waits up to this long; longer ones are handed back to
# the broker as a delayed message, so a long outage does not pin worker threads.
LONG_WAIT_S = 2.0
# Time one message may take before its leftovers are handed back (well under TimeLimit).
MESSAGE_BUDGET_S = 30.0
# Largest slow-start round.
MAX_ROUND = 64
# Longest single wait for rate-limiter permits before the budget is checked again.
LIMITER_MAX_WAIT_S = 5.0
# Longest an outcome may wait for the rest of its message before it is published anyway.
MAX_EVENT_DELAY_S = 0.05
# How long the launcher waits between looks for a Redis that went away mid-message.
REDIS_RETRY_S = (0.2, 5.0)

Requeue = Callable[[dict[str, Any], int], None]


@dataclass(slots=True)
class _Pending:
    request: LaunchRequest
    pod: dict[str, Any]
    attempts: int = 0
    last_reason: str = ""
    not_before: float = 0.0  # time.monotonic()
    uncertain: bool = False  # an attempt got no answer: the pod may exist


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
    events: list[TaskEvent] = field(default_factory=list)


@dataclass(slots=True)
class _Outbox:
    """Events decided but not yet published, and when the oldest of them was decided."""

    events: list[TaskEvent] = field(default_factory=list)
    since: float = 0.0  # time.monotonic()

    def add(self, events: list[TaskEvent]) -> None:
        if events and not self.events:
            self.since = time.monotonic()
        self.events.extend(events)

    def overdue(self) -> bool:
        return bool(self.events) and time.monotonic() - self.since >= MAX_EVENT_DELAY_S


@dataclass(frozen=True, slots=True)
class _Result:
    kind: str  # created | exists | rejected | retry | stale
    pod: dict[str, Any] | None = None
    error: KubeApiError | None = None
    sent_at: float = 0.0


def _retry_label(error: KubeApiError) -> str:
    if error.status == 0:
        return "timeout" if error.reason == "Timeout" else "connection"
    if error.is_quota:
        return "quota"
    return str(error.status)


def describe(error: KubeApiError) -> str:
    """The reason a task fails with: the API server's reason and message."""
    if error.status:
        return f"{error.reason} ({error.status}): {error.message}"
    return f"{error.reason}: {error.message}"


class Launcher:
    """Handles launch envelopes; one per worker process, shared by its threads."""

    def __init__(self, settings: Settings, *, kube: KubeClient, redis_client: Any,
                 signer: MessageSigner, requeue: Requeue, factory: PodFactory | None = None,
                 limiter: ClusterRateLimiter | None = None,
                 concurrency: int = DEFAULT_CONCURRENCY) -> None:
        self.settings = settings
        # Rare calls (the GET that looks for an existing pod) stay on the sync client; the
        # creates go through one aiohttp session on this process's own event loop.
        self.kube = kube
        self.aio = AsyncKubeClient.from_client(kube, concurrency=concurrency)
        self.loop = EventLoopThread("podfleet-launch-loop")
        self.redis = redis_client
        self.signer = signer
        self.requeue = requeue
        self.keys = RedisKeys(settings.redis.prefix)
        self.factory = factory or PodFactory(settings)
        # One bucket per task queue route, made on first use; ``limiter`` replaces the
        # default route's (tests).
        self._limiters: dict[str, ClusterRateLimiter] = {}
        if limiter is not None:
            self._limiters[route_for(settings, None).limiter_name] = limiter
        self.limiter = self.limiter_for(None)
        self.max_attempts = settings.launch.max_attempts
        self.records = LaunchRecords(redis_client, self.keys)
        # Metric children, looked up once: ``labels()`` takes a lock and builds a key per call.
        self._create_seconds = KUBE_REQUEST_DURATION.labels(verb="create")
        self._create_codes: dict[int, Any] = {}
        self._outcomes: dict[tuple[str, str], Any] = {}
        self._latencies: dict[str, Any] = {}

    def limiter_for(self, queue: str | None) -> ClusterRateLimiter:
        """The rate limiter of task queue ``queue``'s route (shared by unlisted queues)."""
        route: QueueRoute = route_for(self.settings, queue)
        limiter = self._limiters.get(route.limiter_name)
        if limiter is None:
            limiter = self._limiters.setdefault(route.limiter_name, ClusterRateLimiter(
                self.redis, self.keys.rate_limit(route.limiter_name), route.rate, route.burst,
                queue=route.name))
        return limiter

    def close(self) -> None:
        """Close the session and stop the event loop (at worker shutdown)."""
        if self.loop.running:
            try:
                self.loop.run(self.aio.close(), timeout=5.0)
            except Exception as exc:  # shutting down: nothing left to do about it
                logger.warning("closing the launcher's HTTP session: %s", exc)
            self.loop.stop()
        self.kube.close()

    # --- entry point --------------------------------------------------------------------

    def handle(self, envelope: Any) -> LaunchReport:
        """Launch every request of ``envelope``; raise DeadLetter for a message to refuse.

        Returns only once every outcome is recorded and published, so the message is acked
        only then. If Redis goes away meanwhile (the limiter, the records and the event
        streams all live there) the thread waits for it and then runs the message again from
        the start: the launch records and deterministic pod names make that second run create
        nothing twice. Handing the message to dramatiq's retries instead would lose it: the
        retry is enqueued through the same dead Redis, and the original is acked later.
        """
        down_since: float | None = None
        # Launches this delivery created, kept here too: a Redis that comes back empty has
        # lost their records, and a finished pod may already be deleted.
        created: set[str] = set()
        while True:
            try:
                report = self._handle_once(envelope, created)
            except redis.RedisError as exc:
                if down_since is None:
                    down_since = time.monotonic()
                    logger.warning("Redis unreachable mid-launch (%s); this message waits for "
                                   "it and then runs again", exc)
                self._wait_for_redis(down_since)
                continue
            if down_since is not None:
                logger.info("Redis is back after %.1fs; launch message done",
                            time.monotonic() - down_since)
            return report

    def _wait_for_redis(self, down_since: float) -> None:
        delay = REDIS_RETRY_S[0]
        while True:
            time.sleep(delay)
            try:
                self.redis.ping()
                return
            except redis.RedisError:
                delay = min(REDIS_RETRY_S[1], delay * 2)
                if time.monotonic() - down_since > 60:
                    logger.warning("Redis unreachable for %.0fs; still waiting",
                                   time.monotonic() - down_since)
                    down_since = time.monotonic()

    def _handle_once(self, envelope: Any, created: set[str]) -> LaunchReport:
        try:
            batch = open_envelope(envelope, self.signer)
        except InvalidMessage as exc:
            reason = str(exc)
            kind = "signature" if "signature" in reason else "malformed"
            raise DeadLetter(f"launch message refused: {reason}", kind=kind) from None
        carried = self._carried_attempts(envelope)
        LAUNCH_BATCH_SIZE.observe(len(batch.requests))
        report = LaunchReport()
        pending: list[_Pending] = []
        decided: list[TaskEvent] = []
        for request in batch.requests:
            if request.deadline is not None and time.time() > request.deadline:
                name = pod_name(request.key, request.launch_id)
                decided.append(self._expired(_Pending(request, {"metadata": {"name": name}}),
                                             report))
                continue
            try:
                pod = self.factory.build(request)
            except ValueError as exc:
                decided.append(self._failed(request, f"invalid executor_config: {exc}",
                                            report, outcome="invalid"))
                continue
            attempts, reason = carried.get(request.launch_id, (0, ""))
            pending.append(_Pending(request, pod, attempts=attempts, last_reason=reason))
        pending = self._skip_finished_launches(pending, decided, report, created)
        # Highest priority first (stable: the executor's order among equals).
        pending.sort(key=lambda p: -p.request.priority)
        limiter = self.limiter_for(batch.requests[0].queue)
        outbox = _Outbox()
        outbox.add(decided)
        try:
            self._create_all(pending, report, outbox, created, limiter)
        finally:
            # Whatever is decided is published, even when something unexpected went wrong.
            self._flush(outbox, report)
        return report

    def _skip_finished_launches(self, pending: list[_Pending], decided: list[TaskEvent],
                                report: LaunchReport, created: set[str]) -> list[_Pending]:
        """Claim each launch; leave out those an earlier delivery already created or failed
        (or this one did, before Redis went away)."""
        prior = self.records.claim(p.request.launch_id for p in pending)
        for launch_id in created:
            prior[launch_id] = PriorLaunch(CREATED, None)
        if not prior:
            return pending
        decided.extend(self._settle_finished(
            [p for p in pending if p.request.launch_id in prior], prior, report))
        return [p for p in pending if p.request.launch_id not in prior]

    def _settle_finished(self, items: list[_Pending], prior: dict[str, PriorLaunch],
                         report: LaunchReport) -> list[TaskEvent]:
        """Events for launches another delivery finished: LAUNCHED if the pod still exists."""
        events: list[TaskEvent] = []
        for item in items:
            done = prior[item.request.launch_id]
            existing = self._existing(item) if done.state == CREATED else None
            if existing:
                events.append(self._launched(item, report, existing, attempts=item.attempts,
                                             sent_at=0.0, already_exists=True))
            else:
                # Its pod was created and is gone (finished and deleted), or it failed: a
                # redelivery or a replay; the task's events were published the first time.
                report.replayed += 1
                self._count_outcome(item.request.namespace, "replayed")
                logger.info("launch %s of %s already %s: nothing to create",
                            item.request.launch_id, item.request.key, done.state)
        return events

    # --- the create loop ----------------------------------------------------------------

    def _create_all(self, pending: list[_Pending], report: LaunchReport,
                    outbox: _Outbox, created: set[str], limiter: ClusterRateLimiter) -> None:
        started = time.monotonic()
        # A permit used later than this after its conformance time is stale (the process was
        # paused: SIGSTOP, a GC pause, a frozen VM) and is not spent: a fresh one is taken.
        # Lateness L lets L × rate extra creates into a 1 s window: keep that near half a
        # create, but never below 20 ms (an event loop's ordinary jitter on a busy host).
        stale_s = (max(0.02, min(0.05, 0.5 / limiter.rate)) if limiter.rate > 0
                   else float("inf"))
        window = 1
        growing = True
        while pending:
            now = time.monotonic()
            ready = [p for p in pending if p.not_before <= now]
            if not ready:
                next_at = min(p.not_before for p in pending)
                self._flush(outbox, report)
                if next_at - now > LONG_WAIT_S or now - started > MESSAGE_BUDGET_S:
                    self._hand_back(pending, next_at - now, report)
                    return
                time.sleep(next_at - now)
                continue
            if now - started > MESSAGE_BUDGET_S:
                self._flush(outbox, report)
                self._hand_back(pending, 0.0, report)
                return
            expired = [p for p in ready if p.request.deadline is not None
                       and time.time() > p.request.deadline]
            if expired:
                outbox.add([self._expired(p, report) for p in expired])
                gone = {id(p) for p in expired}
                pending = [p for p in pending if id(p) not in gone]
                continue
            size = min(window, len(ready))
            if not limiter.unlimited or outbox.overdue():
                self._flush(outbox, report)  # the limiter may make this thread wait
            grant = limiter.acquire(size, min(LIMITER_MAX_WAIT_S, max(
                0.1, MESSAGE_BUDGET_S - (time.monotonic() - started))))
            if not grant.granted:
                continue
            batch = ready[:grant.granted]
            done_elsewhere = self.records.finished(
                p.request.launch_id for p in batch if p.request.launch_id not in created)
            if done_elsewhere:
                outbox.add(self._settle_finished(
                    [p for p in batch if p.request.launch_id in done_elsewhere],
                    done_elsewhere, report))
                pending = [p for p in pending if p.request.launch_id not in done_elsewhere]
                continue
            results = self.loop.run(self._create_round(batch, grant, created, stale_s))
            events: list[TaskEvent] = []
            failed_round = False
            done: set[int] = set()
            for item, result in zip(batch, results, strict=True):
                event = self._outcome(item, result, report)
                if event is None:
                    failed_round = True
                else:
                    events.append(event)
                    done.add(id(item))
            outbox.add(events)
            pending = [p for p in pending if id(p) not in done]
            if failed_round:
                window = max(1, window // 2)
                growing = False
            elif growing and grant.granted == size:
                window = min(MAX_ROUND, window * 2)

    async def _create_round(self, batch: list[_Pending], grant: Grant,
                            created: set[str], stale_s: float) -> list[_Result]:
        """One slow-start round: the creates of ``batch`` concurrently, results in order.

        Each create waits for its own rate-limiter permit (``grant.delay(i)``), so the pool
        never sends faster than the cluster-wide rate, even within one round.
        """
        return list(await asyncio.gather(
            *(self._create(item, grant.due_at(i), created, stale_s)
              for i, item in enumerate(batch))))

    async def _create(self, item: _Pending, due_at: float, created: set[str],
                      stale_s: float) -> _Result:
        """Create ``item``'s pod at its permit's time ``due_at`` (monotonic); a permit found
        stale (the process was paused past it) is not used: ``stale`` asks for a new one."""
        wait = due_at - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        if time.monotonic() - due_at > stale_s:
            return _Result("stale")
        namespace = item.request.namespace
        sent_at = time.time()
        began = time.perf_counter()
        try:
            pod = await self.aio.create_pod(namespace, item.pod)
        except KubeApiError as exc:
            self._create_seconds.observe(time.perf_counter() - began)
            self._count_request(exc.status)
            if exc.status == 409 and exc.reason == "AlreadyExists":
                return _Result("exists", error=exc, sent_at=sent_at)
            if exc.retryable or exc.status == 409:
                return _Result("retry", error=exc, sent_at=sent_at)
            return _Result("rejected", error=exc, sent_at=sent_at)
        self._create_seconds.observe(time.perf_counter() - began)
        self._count_request(201)
        # The record says "created" with the round's events; a pod deleted before that (its
        # worker killed meanwhile) was marked by the watcher's deleter first.
        created.add(item.request.launch_id)
        return _Result("created", pod=pod, sent_at=sent_at)

    def _count_request(self, status: int) -> None:
        child = self._create_codes.get(status)
        if child is None:
            child = self._create_codes[status] = KUBE_REQUESTS.labels(verb="create",
                                                                      code=str(status))
        child.inc()

    def _count_outcome(self, namespace: str, outcome: str) -> None:
        child = self._outcomes.get((namespace, outcome))
        if child is None:
            child = self._outcomes[(namespace, outcome)] = PODS_CREATED.labels(
                namespace=namespace, outcome=outcome)
        child.inc()

    def _outcome(self, item: _Pending, result: _Result, report: LaunchReport
                 ) -> TaskEvent | None:
        """The event that decides ``item``, or None when it is to be retried."""
        request = item.request
        if result.kind == "stale":
            return None  # not an attempt: it goes again with a fresh permit
        attempts = item.attempts + 1
        if result.kind == "created":
            assert result.pod is not None
            return self._launched(item, report, result.pod, attempts=attempts,
                                  sent_at=result.sent_at)
        error = result.error
        assert error is not None
        if result.kind == "exists":
            return self._launched(item, report, self._existing(item), attempts=attempts,
                                  sent_at=result.sent_at, already_exists=True)
        if result.kind == "rejected":
            return self._failed(request, describe(error), report, outcome="invalid",
                                detail={"status": error.status, "attempts": attempts})
        item.attempts = attempts
        item.last_reason = describe(error)
        item.uncertain = item.uncertain or error.status == 0
        if attempts >= self.max_attempts:
            existing = self._existing(item) if item.uncertain else None
            if existing:
                return self._launched(item, report, existing, attempts=attempts,
                                      sent_at=result.sent_at, already_exists=True)
            return self._failed(
                request, f"gave up after {attempts} attempts: {item.last_reason}", report,
                outcome="failed", detail={"status": error.status, "attempts": attempts})
        report.retries += 1
        LAUNCH_RETRIES.labels(reason=_retry_label(error)).inc()
        item.not_before = time.monotonic() + self._backoff(attempts, error.retry_after)
        return None

    def _backoff(self, attempts: int, retry_after: float | None) -> float:
        base = self.settings.launch.backoff_seconds * float(2 ** (attempts - 1))
        delay = min(self.settings.launch.backoff_max_seconds, base)
        delay *= random.uniform(0.5, 1.0)  # jitter: retries from many pods spread out
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.settings.launch.backoff_max_seconds * 4))
        return delay

    def _existing(self, item: _Pending) -> dict[str, Any] | None:
        """The pod of ``item`` if it exists (to report its uid); None on any doubt."""
        try:
            return self.kube.get_pod(item.request.namespace, item.pod["metadata"]["name"])
        except KubeApiError:
            return None

    # --- events -------------------------------------------------------------------------

    def _event(self, request: LaunchRequest, state: TaskState, *, reason: str | None = None,
               pod: dict[str, Any] | None = None, name: str | None = None,
               detail: dict[str, Any] | None = None) -> TaskEvent:
        meta = (pod or {}).get("metadata") or {}
        return TaskEvent(
            key=request.key, launch_id=request.launch_id, executor_id=request.executor_id,
            kind=EventKind.STATE, source=EventSource.LAUNCHER, state=state, reason=reason,
            pod_name=meta.get("name") or name, namespace=request.namespace,
            pod_uid=meta.get("uid"), detail=detail or {})

    def _launched(self, item: _Pending, report: LaunchReport, pod: dict[str, Any] | None, *,
                  attempts: int, sent_at: float, already_exists: bool = False) -> TaskEvent:
        request = item.request
        namespace = request.namespace
        detail: dict[str, Any] = {"attempts": attempts, "sent_at": sent_at}
        if already_exists:
            detail["already_exists"] = True
            report.already_exists += 1
            self._count_outcome(namespace, "already_exists")
        else:
            report.created += 1
            self._count_outcome(namespace, "created")
            latency = self._latencies.get(namespace)
            if latency is None:
                latency = self._latencies[namespace] = LAUNCH_LATENCY.labels(
                    namespace=namespace)
            latency.observe(max(0.0, time.time() - request.queued_at))
        return self._event(request, TaskState.LAUNCHED, pod=pod,
                           name=item.pod.get("metadata", {}).get("name"), detail=detail)

    def _failed(self, request: LaunchRequest, reason: str, report: LaunchReport, *,
                outcome: str, detail: dict[str, Any] | None = None) -> TaskEvent:
        report.failed += 1
        self._count_outcome(request.namespace, outcome)
        logger.warning("task %s failed to launch: %s", request.key, reason)
        return self._event(request, TaskState.FAILED, reason=reason, detail=detail)

    def _expired(self, item: _Pending, report: LaunchReport) -> TaskEvent:
        """A request past its deadline: FAILED "expired", unless its pod exists already."""
        # An earlier delivery may have created the pod before the deadline passed.
        existing = self._existing(item)
        if existing:
            return self._launched(item, report, existing, attempts=item.attempts,
                                  sent_at=0.0, already_exists=True)
        report.expired += 1
        report.failed += 1
        self._count_outcome(item.request.namespace, "expired")
        return self._event(item.request, TaskState.FAILED, reason="expired",
                           detail={"deadline": item.request.deadline})

    def _flush(self, outbox: _Outbox, report: LaunchReport) -> None:
        """Publish the outbox's events in one Redis round trip."""
        events = outbox.events
        if not events:
            return
        # Records first: a crash between the two leaves a record the next delivery trusts.
        self.records.finish(
            (e.launch_id, CREATED if e.state is TaskState.LAUNCHED else FAILED, e.pod_uid)
            for e in events if e.state in (TaskState.LAUNCHED, TaskState.FAILED))
        publish_events(self.redis, self.keys, events)
        outbox.events = []
        report.events.extend(events)
        states: dict[str, int] = {}
        for event in events:
            state = event.state.value if event.state else ""
            states[state] = states.get(state, 0) + 1
        for state, count in states.items():
            TASK_EVENTS_PUBLISHED.labels(source=EventSource.LAUNCHER.value,
                                         state=state).inc(count)

    # --- handing leftovers back to the broker --------------------------------------------

    def _hand_back(self, pending: list[_Pending], delay_s: float, report: LaunchReport) -> None:
        """Re-enqueue ``pending`` as one signed message, delayed by ``delay_s``."""
        batch = LaunchBatch(requests=tuple(p.request for p in pending))
        body = orjson.loads(batch.to_body())
        body["retry"] = {p.request.launch_id: [p.attempts, p.last_reason] for p in pending}
        raw = orjson.dumps(body)
        envelope = {"v": WIRE_VERSION, "body": raw.decode(), "sig": self.signer.sign(raw)}
        self.requeue(envelope, max(0, int(delay_s * 1000)))
        report.requeued += len(pending)
        logger.info("handed %d pod(s) back to the broker, due in %.1fs", len(pending), delay_s)

    def _carried_attempts(self, envelope: Any) -> dict[str, tuple[int, str]]:
        """Attempt counts a handed-back message carries (its body is already verified)."""
        body = envelope.get("body") if isinstance(envelope, dict) else None
        if not isinstance(body, str) or '"retry"' not in body:
            return {}
        retry = orjson.loads(body).get("retry")
        if not isinstance(retry, dict):
            return {}
        carried: dict[str, tuple[int, str]] = {}
        for launch_id, value in retry.items():
            if (isinstance(value, list) and len(value) == 2 and isinstance(value[0], int)
                    and isinstance(value[1], str)):
                carried[launch_id] = (value[0], value[1])
        return carried
