"""Turning one launch message into pods: verify, build, claim, create, report.

A message holds the tasks of one task queue (the executor routes them so), highest priority
first; the launcher keeps that order. It verifies the envelope (a forged or malformed one is
dead-lettered), builds each pod, leaves out launches an earlier delivery finished
(:mod:`podfleet.workers.launch_records`), then hands the rest to
:class:`~podfleet.workers.launcher.slow_start.SlowStart`; what each create came to is judged in
:mod:`podfleet.workers.launcher.outcome`. Leftovers the rounds stop on go back to the broker as
a new signed message, delayed, each request carrying its attempt count and last reason
(:meth:`LaunchRequest.handed_back`). Launches in a namespace whose ResourceQuota is full are
sorted out first by the :class:`~podfleet.workers.quota.QuotaGate` (go now, wait, never fit);
those that wait, and those a create parked on a 403 "exceeded quota", go back as one more
message, delayed by ``PODFLEET_QUOTA_POLL_SECONDS``, without counting an attempt. The message
is acked (the function returns) only after every pod of it is decided or handed on, and every
event is published: in one round trip per message, or sooner — before any wait, and once the
oldest unpublished one is :data:`~podfleet.workers.launcher.outcome.MAX_EVENT_DELAY_S` old — so
none sits unpublished while the thread waits.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import redis

from podfleet.contracts.events import TaskEvent
from podfleet.contracts.messages import InvalidMessage, LaunchBatch, open_envelope
from podfleet.contracts.naming import pod_name
from podfleet.contracts.queues import configured_routes
from podfleet.contracts.redis_keys import RedisKeys
from podfleet.contracts.signing import MessageSigner
from podfleet.kube.aio import DEFAULT_CONCURRENCY, AsyncKubeClient, EventLoopThread
from podfleet.kube.client import KubeClient
from podfleet.monitoring.metrics import (
    CLOCK_SKEW,
    LAUNCH_BATCH_SIZE,
    RATE_LIMIT_CONFIGURED,
    ClockReference,
    MessageRejectReason,
    PodCreateOutcome,
)
from podfleet.pods.factory import PodFactory
from podfleet.redis_client.clock import RedisClock
from podfleet.settings import Settings
from podfleet.workers.admission import Admission
from podfleet.workers.launch_records import CREATED, LaunchRecords, PriorLaunch
from podfleet.workers.launcher.outcome import LaunchReport, Outbox, Outcomes, PendingPod
from podfleet.workers.launcher.slow_start import SlowStart
from podfleet.workers.middleware.dead_letter import DeadLetter
from podfleet.workers.quota import QuotaGate

logger = logging.getLogger("podfleet.workers.launcher")

# How long the launcher waits between looks for a Redis that went away mid-message.
REDIS_RETRY_S = (0.2, 5.0)

Requeue = Callable[[dict[str, Any], int], None]


class Launcher:
    """Handles launch envelopes; one per worker process, shared by its threads."""

    def __init__(self, settings: Settings, *, kube: KubeClient, redis_client: Any,
                 signer: MessageSigner, requeue: Requeue, factory: PodFactory | None = None,
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
        # Every create takes its permit here: pending cap, fair share, ceilings, rate.
        self.admission = Admission(settings, redis_client)
        for route in configured_routes(settings):
            RATE_LIMIT_CONFIGURED.labels(queue=route.name).set(route.rate)
        self.records = LaunchRecords(redis_client, self.keys)
        self.quota = QuotaGate(kube, redis_client, self.keys,
                               poll_seconds=settings.launch.quota_poll_seconds)
        # Deadlines are judged on Redis' clock, the one every host and the executor share.
        self.clock = RedisClock(redis_client,
                                observe=CLOCK_SKEW.labels(reference=ClockReference.REDIS).set)
        self.outcomes = Outcomes(settings, kube, self.quota)
        self.slow_start = SlowStart(self.aio, self.loop, self.records, self.outcomes,
                                    self.admission, clock=self.clock.now)

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
            kind = (MessageRejectReason.SIGNATURE if "signature" in reason
                    else MessageRejectReason.MALFORMED)
            raise DeadLetter(f"launch message refused: {reason}", kind=kind) from None
        LAUNCH_BATCH_SIZE.observe(len(batch.requests))
        report = LaunchReport()
        pending: list[PendingPod] = []
        decided: list[TaskEvent] = []
        batch_items: list[PendingPod] = []  # every request that has a pod, for the quota lists
        for request in batch.requests:
            if request.deadline is not None and self.clock.now() > request.deadline:
                name = pod_name(request.key, request.launch_id)
                decided.append(self.outcomes.expired(
                    PendingPod(request, {"metadata": {"name": name}}), report))
                continue
            try:
                pod = self.factory.build(request)
            except ValueError as exc:
                decided.append(self.outcomes.failed(request, f"invalid executor_config: {exc}",
                                                    report, outcome=PodCreateOutcome.INVALID))
                continue
            pending.append(PendingPod(request, pod, attempts=request.attempts,
                                      last_reason=request.last_reason))
        batch_items = list(pending)
        pending = self._skip_finished_launches(pending, decided, report, created)
        pending, waiting = self._sort_out_by_quota(pending, decided, report)
        # Highest priority first (stable: the executor's order among equals).
        pending.sort(key=lambda p: -p.request.priority)
        outbox = Outbox(self.redis, self.keys, self.records, report)
        outbox.add(decided)
        try:
            leftover = self.slow_start.run(pending, report, outbox, created,
                                          batch.requests[0].queue)
            undecided = list(leftover.pending) if leftover is not None else []
            if leftover is not None:
                self._hand_back(leftover.pending, leftover.delay_s, report)
            waiting.extend(report.parked)
            if waiting:
                self._hand_back(waiting, self.settings.launch.quota_poll_seconds, report)
            self._leave_waiting_lists(batch_items, waiting + undecided)
        finally:
            # Whatever is decided is published, even when something unexpected went wrong.
            outbox.flush()
        return report

    def _skip_finished_launches(self, pending: list[PendingPod], decided: list[TaskEvent],
                                report: LaunchReport, created: set[str]) -> list[PendingPod]:
        """Claim each launch; leave out those an earlier delivery already created or failed
        (or this one did, before Redis went away)."""
        prior = self.records.claim(p.request.launch_id for p in pending)
        for launch_id in created:
            prior[launch_id] = PriorLaunch(CREATED, None)
        if not prior:
            return pending
        decided.extend(self.outcomes.settle_finished(
            [p for p in pending if p.request.launch_id in prior], prior, report))
        return [p for p in pending if p.request.launch_id not in prior]

    # --- quota-aware waiting ----------------------------------------------------------------

    def _sort_out_by_quota(self, pending: list[PendingPod], decided: list[TaskEvent],
                           report: LaunchReport) -> tuple[list[PendingPod], list[PendingPod]]:
        """The launches to create now, and those to hand back to wait for quota; those that
        can never fit are failed into ``decided``."""
        if not pending:
            return pending, []
        answer = self.quota.sort_out([(p.request, p.pod) for p in pending])
        for i, reason in answer.never.items():
            decided.append(self.outcomes.failed(pending[i].request, reason, report,
                                                outcome=PodCreateOutcome.INVALID))
        for i, reason in answer.joined.items():
            if i in answer.wait:
                decided.append(self.outcomes.waiting(pending[i].request, reason))
        go = set(answer.go)
        return ([p for i, p in enumerate(pending) if i in go],
                [pending[i] for i in answer.wait])

    def _leave_waiting_lists(self, items: list[PendingPod], undecided: list[PendingPod]
                             ) -> None:
        """Take this message's launches that are decided off their namespaces' waiting lists
        (only namespaces that have a list: most messages make no call here)."""
        still = {id(p) for p in undecided}
        done = [(p.request, p.pod) for p in items if id(p) not in still
                and p.request.namespace in self.quota.namespaces_waiting]
        if done:
            self.quota.leave(done)

    # --- handing leftovers back to the broker --------------------------------------------

    def _hand_back(self, pending: list[PendingPod], delay_s: float,
                   report: LaunchReport) -> None:
        """Re-enqueue ``pending`` as one signed message, delayed by ``delay_s``."""
        batch = LaunchBatch(requests=tuple(p.request.handed_back(p.attempts, p.last_reason)
                                           for p in pending))
        self.requeue(batch.seal(self.signer), max(0, int(delay_s * 1000)))
        report.requeued += len(pending)
        logger.info("handed %d pod(s) back to the broker, due in %.1fs", len(pending), delay_s)
