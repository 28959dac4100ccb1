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
import threading
import time
from collections.abc import Callable
from enum import Enum
from typing import Any

import redis

from podfleet.contracts.clusters import ClusterSpec
from podfleet.contracts.messages import InvalidMessage, LaunchBatch, open_envelope
from podfleet.contracts.naming import pod_name
from podfleet.contracts.queues import configured_routes
from podfleet.contracts.redis_keys import RedisKeys
from podfleet.contracts.signing import MessageSigner
from podfleet.kube.aio import DEFAULT_CONCURRENCY, EventLoopThread
from podfleet.kube.client import KubeClient, RequestObserver
from podfleet.kube.clusters import ClusterClients
from podfleet.monitoring.metrics import (
    CLOCK_SKEW,
    LAUNCH_BATCH_SIZE,
    RATE_LIMIT_CONFIGURED,
    ClockReference,
    MessageRejectReason,
    PodCreateOutcome,
    kube_request_observer,
)
from podfleet.pods.factory import PodFactory
from podfleet.redis_client.clock import RedisClock
from podfleet.settings import Settings
from podfleet.workers.launch_records import CLAIMED, CREATED, LaunchRecords, PriorLaunch
from podfleet.workers.launcher.lane import ClusterLane
from podfleet.workers.launcher.outcome import LaunchReport, Outbox, PendingPod
from podfleet.workers.launcher.placement import ClusterHealth, choose
from podfleet.workers.middleware.dead_letter import DeadLetter

logger = logging.getLogger("podfleet.workers.launcher")

# How long the launcher waits between looks for a Redis that went away mid-message.
REDIS_RETRY_S = (0.2, 5.0)

Requeue = Callable[[dict[str, Any], int], None]


class Move(Enum):
    """What became of a launch a cluster left undecided."""

    MOVED = "moved"      # placed on another of its clusters, to be tried now
    HELD = "held"        # stays where it is: handed back to the broker
    DECIDED = "decided"  # its pod was found where it was: LAUNCHED


class Launcher:
    """Handles launch envelopes; one per worker process, shared by its threads.

    It reaches every configured cluster (``settings.clusters``) through one
    :class:`~podfleet.workers.launcher.lane.ClusterLane` each, made on first use; ``kube``,
    when given, is the client of the ``default`` cluster (tests), ``clients`` the clients of
    all (otherwise made from each cluster's configuration).
    """

    def __init__(self, settings: Settings, *, redis_client: Any, signer: MessageSigner,
                 requeue: Requeue, kube: KubeClient | None = None,
                 clients: ClusterClients | None = None, factory: PodFactory | None = None,
                 concurrency: int = DEFAULT_CONCURRENCY) -> None:
        self.settings = settings
        self.loop = EventLoopThread("podfleet-launch-loop")
        self.redis = redis_client
        self.signer = signer
        self.requeue = requeue
        self.keys = RedisKeys(settings.redis.prefix)
        self.factory = factory or PodFactory(settings)
        for route in configured_routes(settings):
            RATE_LIMIT_CONFIGURED.labels(queue=route.name).set(route.rate)
        self.records = LaunchRecords(redis_client, self.keys)
        # Deadlines are judged on Redis' clock, the one every host and the executor share.
        self.clock = RedisClock(redis_client, strict=True,
                                observe=CLOCK_SKEW.labels(reference=ClockReference.REDIS).set)
        self.clients = clients or ClusterClients(
            settings.clusters.configured, timeout_seconds=settings.kubernetes.timeout_seconds,
            observe=kube_request_observer,
            factory=_with_default(kube) if kube is not None else None)
        self.health = ClusterHealth()
        self.concurrency = concurrency
        self._lanes: dict[str, ClusterLane] = {}
        self._lanes_lock = threading.Lock()

    def lane(self, cluster: str) -> ClusterLane:
        """The lane of ``cluster`` (configured: ``self.clients.names``), made on first use."""
        lane = self._lanes.get(cluster)
        if lane is None:
            with self._lanes_lock:
                lane = self._lanes.get(cluster)
                if lane is None:
                    lane = self._lanes[cluster] = ClusterLane.build(
                        self.clients.spec(cluster), self.clients.client(cluster),
                        settings=self.settings, redis_client=self.redis,
                        records=self.records, loop=self.loop, health=self.health,
                        clock=self.clock.now, concurrency=self.concurrency)
        return lane

    def close(self) -> None:
        """Close the sessions and stop the event loop (at worker shutdown)."""
        lanes = list(self._lanes.values())
        if self.loop.running:
            for lane in lanes:
                try:
                    self.loop.run(lane.aio.close(), timeout=5.0)
                except Exception as exc:  # shutting down: nothing left to do about it
                    logger.warning("closing the launcher's HTTP session to %s: %s",
                                   lane.name, exc)
            self.loop.stop()
        self.clients.close()

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
        # Launches this delivery created, and where, kept here too: a Redis that comes back
        # empty has lost their records, and a finished pod may already be deleted.
        created: dict[str, str] = {}
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

    def _handle_once(self, envelope: Any, created: dict[str, str]) -> LaunchReport:
        try:
            batch = open_envelope(envelope, self.signer)
        except InvalidMessage as exc:
            reason = str(exc)
            kind = (MessageRejectReason.SIGNATURE if "signature" in reason
                    else MessageRejectReason.MALFORMED)
            raise DeadLetter(f"launch message refused: {reason}", kind=kind) from None
        LAUNCH_BATCH_SIZE.observe(len(batch.requests))
        report = LaunchReport()
        outbox = Outbox(self.redis, self.keys, self.records, report)
        pending: list[PendingPod] = []
        expired: list[PendingPod] = []
        configured = self.clients.names
        for request in batch.requests:
            if not any(c in configured for c in request.clusters):
                outbox.add([self.lane(configured[0]).outcomes.failed(
                    request, f"none of its clusters ({', '.join(request.clusters)}) is "
                    f"configured on this worker (configured: {', '.join(configured)})",
                    report, outcome=PodCreateOutcome.INVALID)])
                continue
            if request.deadline is not None and self.clock.now() > request.deadline:
                expired.append(PendingPod(
                    request, {"metadata": {"name": pod_name(request.key, request.launch_id)}}))
                continue
            try:
                pod = self.factory.build(request)
            except ValueError as exc:
                outbox.add([self.lane(configured[0]).outcomes.failed(
                    request, f"invalid executor_config: {exc}", report,
                    outcome=PodCreateOutcome.INVALID)])
                continue
            pending.append(PendingPod(request, pod, attempts=request.attempts,
                                      last_reason=request.last_reason))
        self._expire(expired, outbox, report)
        pending = self._skip_finished_launches(pending, outbox, report, created)
        held: list[PendingPod] = []
        placed: list[PendingPod] = []
        for item in pending:
            if item.uncertain or self._place(item):
                placed.append(item)
            else:
                held.append(item)
        # None of their clusters reachable: they wait until one may be tried again.
        held_wait = self.health.wait_s(
            {c for p in held for c in p.request.clusters if c in configured})
        queue = batch.requests[0].queue
        touched: dict[str, list[PendingPod]] = {}
        try:
            delay, waiting = self._run_rounds(placed, held, outbox, report, created, queue,
                                              touched)
            if held:
                self._hand_back(held, max(0.1, min(delay, held_wait) if placed else held_wait),
                                report)
            waiting.extend(report.parked)
            if waiting:
                self._hand_back(waiting, self.settings.launch.quota_poll_seconds, report)
            still = {id(p) for p in held + waiting}
            for cluster, items in touched.items():
                self._leave_waiting_lists(self.lane(cluster), items, still)
        finally:
            # Whatever is decided is published, even when something unexpected went wrong.
            outbox.flush()
        return report

    # --- placement ------------------------------------------------------------------------

    def _place(self, item: PendingPod) -> bool:
        """Put ``item`` on the next of its clusters it has not tried (False: none left, or
        none reachable)."""
        chosen = choose(item.request, self.clients.names, self.health, exclude=item.tried)
        if chosen is None:
            return False
        item.cluster = chosen
        item.not_before = 0.0
        return True

    def _run_rounds(self, placed: list[PendingPod], held: list[PendingPod], outbox: Outbox,
                    report: LaunchReport, created: dict[str, str], queue: str | None,
                    touched: dict[str, list[PendingPod]]
                    ) -> tuple[float, list[PendingPod]]:
        """Create ``placed`` cluster by cluster; what a cluster leaves (no room, unreachable,
        retrying) moves to the next eligible cluster when it may, or joins ``held``.
        Returns when the held ones are due again (inf: none held here), and those waiting
        for quota."""
        delay = float("inf")
        waiting: list[PendingPod] = []
        todo = placed
        while todo:
            by_cluster: dict[str, list[PendingPod]] = {}
            for item in todo:
                by_cluster.setdefault(item.cluster, []).append(item)
            todo = []
            for cluster, group in by_cluster.items():
                if cluster not in self.clients.names:  # pinned where this worker cannot go
                    held.extend(group)
                    delay = min(delay, self.settings.launch.quota_poll_seconds)
                    continue
                lane = self.lane(cluster)
                touched.setdefault(cluster, []).extend(group)
                if not self.health.usable(cluster):
                    leftover, wait_s = group, self.health.wait_s([cluster])
                else:
                    go, wait = self._sort_out_by_quota(lane, group, outbox, report)
                    waiting.extend(wait)
                    # Highest priority first (stable: the executor's order among equals).
                    go.sort(key=lambda p: -p.request.priority)
                    handback = lane.slow_start.run(go, report, outbox, created, queue)
                    leftover = list(handback.pending) if handback is not None else []
                    wait_s = handback.delay_s if handback is not None else 0.0
                    todo.extend(report.elsewhere)
                    report.elsewhere.clear()
                for item in leftover:
                    verdict = self._move(lane, item, outbox, report)
                    if verdict is Move.MOVED:
                        todo.append(item)
                    elif verdict is Move.HELD:
                        held.append(item)
                        delay = min(delay, wait_s)
        return delay, waiting

    def _move(self, lane: ClusterLane, item: PendingPod, outbox: Outbox,
              report: LaunchReport) -> Move:
        """Move ``item``, which ``lane``'s cluster left undecided, to another of its clusters
        if podfleet knows no pod exists for it there (else it is held there). A create whose
        outcome is unknown is resolved by a GET first, and only once the cluster is down
        (a cluster that answers just retries); a pod the GET finds is the launch's: decided."""
        item.tried.add(lane.name)
        if len(item.request.clusters) == 1:
            return Move.HELD
        if item.uncertain:
            if not self.health.is_down(lane.name):
                return Move.HELD
            exists, pod = lane.outcomes.probe(item)
            if exists is None:
                return Move.HELD
            if exists:
                outbox.add([lane.outcomes.launched(item, report, pod, attempts=item.attempts,
                                                   sent_at=0.0, already_exists=True)])
                return Move.DECIDED
            self.records.unpin([item.request.launch_id], lane.name)
            item.uncertain = False
        if not self._place(item):
            return Move.HELD
        logger.info("launch %s of %s moves from cluster %s to %s", item.request.launch_id,
                    item.request.key, lane.name, item.cluster)
        return Move.MOVED

    def _expire(self, expired: list[PendingPod], outbox: Outbox, report: LaunchReport) -> None:
        """Fail requests past their deadline, unless an earlier delivery created the pod
        (looked for on the cluster its record names, or its first)."""
        if not expired:
            return
        prior = self.records.finished(p.request.launch_id for p in expired)
        for item in expired:
            record = prior.get(item.request.launch_id)
            cluster = record.cluster if record is not None else item.request.clusters[0]
            if cluster not in self.clients.names:
                cluster = self.clients.names[0]
            item.cluster = cluster
            outbox.add([self.lane(cluster).outcomes.expired(item, report)])

    def _skip_finished_launches(self, pending: list[PendingPod], outbox: Outbox,
                                report: LaunchReport, created: dict[str, str]
                                ) -> list[PendingPod]:
        """Claim each launch; leave out those an earlier delivery already created or failed
        (or this one did, before Redis went away). A launch an earlier delivery pinned to a
        cluster (its create may have reached it) stays there, uncertain."""
        prior = self.records.claim(p.request.launch_id for p in pending)
        for launch_id, cluster in created.items():
            prior[launch_id] = PriorLaunch(CREATED, None, cluster)
        if not prior:
            return pending
        left: list[PendingPod] = []
        for item in pending:
            record = prior.get(item.request.launch_id)
            if record is None:
                left.append(item)
            elif record.state == CLAIMED:
                item.cluster, item.uncertain = record.cluster, True
                left.append(item)
            else:
                cluster = (record.cluster if record.cluster in self.clients.names
                           else self.clients.names[0])
                item.cluster = cluster
                outbox.add(self.lane(cluster).outcomes.settle_finished([item], prior, report))
        return left

    # --- quota-aware waiting ----------------------------------------------------------------

    def _sort_out_by_quota(self, lane: ClusterLane, pending: list[PendingPod],
                           outbox: Outbox, report: LaunchReport
                           ) -> tuple[list[PendingPod], list[PendingPod]]:
        """The launches to create now on ``lane``'s cluster, and those to hand back to wait
        for its quota; those that can never fit are failed."""
        if not pending:
            return pending, []
        answer = lane.quota.sort_out([(p.request, p.pod) for p in pending])
        for i, reason in answer.never.items():
            outbox.add([lane.outcomes.failed(pending[i].request, reason, report,
                                             outcome=PodCreateOutcome.INVALID)])
        for i, reason in answer.joined.items():
            if i in answer.wait:
                outbox.add([lane.outcomes.waiting(pending[i].request, reason)])
        go = set(answer.go)
        return ([p for i, p in enumerate(pending) if i in go],
                [pending[i] for i in answer.wait])

    def _leave_waiting_lists(self, lane: ClusterLane, items: list[PendingPod],
                             still: set[int]) -> None:
        """Take this message's launches that are decided off their namespaces' waiting lists
        on ``lane``'s cluster (only namespaces that have a list: most messages make no call
        here)."""
        done = [(p.request, p.pod) for p in items if id(p) not in still
                and p.request.namespace in lane.quota.namespaces_waiting]
        if done:
            lane.quota.leave(done)

    # --- handing leftovers back to the broker --------------------------------------------

    def _hand_back(self, pending: list[PendingPod], delay_s: float,
                   report: LaunchReport) -> None:
        """Re-enqueue ``pending`` as one signed message, delayed by ``delay_s``."""
        batch = LaunchBatch(requests=tuple(p.request.handed_back(p.attempts, p.last_reason)
                                           for p in pending))
        self.requeue(batch.seal(self.signer), max(0, int(delay_s * 1000)))
        report.requeued += len(pending)
        logger.info("handed %d pod(s) back to the broker, due in %.1fs", len(pending), delay_s)


def _with_default(kube: KubeClient) -> Callable[[ClusterSpec, RequestObserver | None],
                                                 KubeClient]:
    """A client factory that gives ``kube`` for the ``default`` cluster."""
    def make(spec: ClusterSpec, observe: RequestObserver | None) -> KubeClient:
        if spec.name == "default":
            return kube
        return KubeClient.from_cluster(spec, observe=observe)
    return make
