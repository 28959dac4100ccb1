"""Creating a message's pods in slow-start rounds, each round's permits granted first.

Creates go out in rounds of 1, 2, 4, … :data:`MAX_ROUND` at once (the pods of one namespace
per round), each create's permit granted first by admission
(:class:`podfleet.workers.admission.Admission`: the pending cap, the queue's fair share, its
ceiling and the cluster's rate, in one call per round); a retryable failure
halves the round and stops its growth, as Kubernetes' own controllers do, so a sick API server
or an exhausted quota is not hammered. A worker thread only sleeps through short waits: when
every pod left must wait longer than :data:`LONG_WAIT_S`, or the message has used
:data:`MESSAGE_BUDGET_S`, the rounds stop and the leftovers are handed back (:class:`HandBack`).
A round refused a permit for :data:`LONG_WAIT_S` hands the leftovers back too, with no attempt
spent: at the pending cap they wait in the broker, not in a thread, until pods start.

The creates of a round run as coroutines on the process's event loop
(:class:`podfleet.kube.aio.EventLoopThread`) through one aiohttp session: the worker thread
hands the whole round over and waits for its results, one handoff per round.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from podfleet.contracts.events import TaskEvent
from podfleet.kube.aio import AsyncKubeClient, EventLoopThread
from podfleet.kube.errors import (
    AlreadyExists,
    Conflict,
    KubeError,
    Unreachable,
)
from podfleet.monitoring.metrics import KUBE_REQUEST_DURATION, KUBE_REQUESTS, Budget, KubeVerb
from podfleet.workers.admission import Admission, Permit
from podfleet.workers.launch_records import CLAIMED, LaunchRecords
from podfleet.workers.launcher.outcome import (
    CreateResult,
    LaunchReport,
    Outbox,
    Outcomes,
    PendingPod,
    may_have_made_pod,
)
from podfleet.workers.launcher.placement import ClusterHealth

# A worker thread sleeps through retry waits up to this long; longer ones are handed back to
# the broker as a delayed message, so a long outage does not pin worker threads.
LONG_WAIT_S = 2.0
# Time one message may take before its leftovers are handed back (well under TimeLimit).
MESSAGE_BUDGET_S = 30.0
# Largest slow-start round.
MAX_ROUND = 64
# A message refused at the pending cap comes back after this long (pods take seconds to
# start; sooner would only spin through the broker).
PENDING_RETRY_S = 1.0


@dataclass(frozen=True, slots=True)
class HandBack:
    """Pods the rounds stopped before deciding, to go back to the broker after ``delay_s``."""

    pending: list[PendingPod]
    delay_s: float


class SlowStart:
    """Runs the rounds of creates of one message after another on one cluster (that of
    ``outcomes`` and ``admission``); one per cluster per Launcher."""

    def __init__(self, aio: AsyncKubeClient, loop: EventLoopThread, records: LaunchRecords,
                 outcomes: Outcomes, admission: Admission,
                 clock: Callable[[], float] = time.time,
                 health: ClusterHealth | None = None) -> None:
        self.cluster = outcomes.cluster
        self.health = health or ClusterHealth()
        self.aio = aio
        self.admission = admission
        # The clock deadlines are judged on (the launcher's: Redis' TIME).
        self.clock = clock
        self.loop = loop
        self.records = records
        self.outcomes = outcomes
        # Metric children, looked up once: ``labels()`` takes a lock and builds a key per call.
        self._create_seconds = KUBE_REQUEST_DURATION.labels(verb=KubeVerb.CREATE)
        self._create_codes: dict[int, Any] = {}

    def run(self, pending: list[PendingPod], report: LaunchReport, outbox: Outbox,
            created: dict[str, str], queue: str | None) -> HandBack | None:
        """Create ``pending`` (of task queue ``queue``) in rounds until each is decided (None)
        or the rest must wait too long (the :class:`HandBack`; the outbox is flushed first
        either way)."""
        admission = self.admission
        started = time.monotonic()
        # A permit used later than this after its conformance time is stale (the process was
        # paused: SIGSTOP, a GC pause, a frozen VM) and is not spent: a fresh one is taken.
        # Lateness L lets L × rate extra creates into a 1 s window: keep that near half a
        # create, but never below 20 ms (an event loop's ordinary jitter on a busy host).
        stale_s = (max(0.02, min(0.05, 0.5 / admission.rate)) if admission.rate > 0
                   else float("inf"))
        window = 1
        growing = True
        while pending:
            now = time.monotonic()
            ready = [p for p in pending if p.not_before <= now]
            if not ready:
                next_at = min(p.not_before for p in pending)
                outbox.flush()
                if next_at - now > LONG_WAIT_S or now - started > MESSAGE_BUDGET_S:
                    return HandBack(pending, next_at - now)
                time.sleep(next_at - now)
                continue
            if now - started > MESSAGE_BUDGET_S:
                outbox.flush()
                return HandBack(pending, 0.0)
            expired = [p for p in ready if p.request.deadline is not None
                       and self.clock() > p.request.deadline]
            if expired:
                outbox.add([self.outcomes.expired(p, report) for p in expired])
                gone = {id(p) for p in expired}
                pending = [p for p in pending if id(p) not in gone]
                continue
            namespace = ready[0].request.namespace
            group = [p for p in ready if p.request.namespace == namespace]
            size = min(window, len(group))
            if not admission.unlimited or outbox.overdue():
                outbox.flush()  # admission may make this thread wait
            grant = self._permit(queue, namespace, group[:size], min(LONG_WAIT_S, max(
                0.1, MESSAGE_BUDGET_S - (time.monotonic() - started))))
            if not grant.granted:
                # Refused for a while: wait in the broker, not in this thread (no attempt
                # is spent: attempts count create failures only).
                outbox.flush()
                delay = PENDING_RETRY_S if grant.budget in (Budget.PENDING, Budget.PENDING_SHARE) \
                    else grant.wait_s
                return HandBack(pending, max(0.1, delay))
            batch = group[:grant.granted]
            # Pinned here just before the creates go (so no other delivery sends one to
            # another cluster meanwhile); those finished or pinned elsewhere are left out.
            done_elsewhere = self.records.pin(
                (p.request.launch_id for p in batch if p.request.launch_id not in created),
                self.cluster)
            if done_elsewhere:
                admission.release(queue, namespace, [_name(p) for p in batch])
                finished = {i: d for i, d in done_elsewhere.items() if d.state != CLAIMED}
                outbox.add(self.outcomes.settle_finished(
                    [p for p in batch if p.request.launch_id in finished], finished, report))
                for item in batch:
                    prior = done_elsewhere.get(item.request.launch_id)
                    if prior is not None and prior.state == CLAIMED:
                        item.cluster, item.uncertain = prior.cluster, True
                        report.elsewhere.append(item)
                pending = [p for p in pending if p.request.launch_id not in done_elsewhere]
                continue
            results = self.loop.run(self._round(batch, grant, created, stale_s))
            # A create that certainly made no pod gives its pending reservation back; one
            # that got no answer may have made it (the watcher confirms it, or it expires).
            admission.release(queue, namespace, [
                _name(p) for p, r in zip(batch, results, strict=True)
                if r.kind in ("rejected", "stale")
                or (r.kind == "retry" and not (isinstance(r.error, Unreachable)
                                               and r.error.sent))])
            self._note_health(results)
            # Known to have made no pod here (and no earlier attempt may have): free to go
            # to another cluster.
            self.records.unpin([
                p.request.launch_id for p, r in zip(batch, results, strict=True)
                if not p.uncertain and (r.kind == "stale" or (
                    r.kind == "retry" and r.error is not None
                    and not may_have_made_pod(r.error)))], self.cluster)
            events: list[TaskEvent] = []
            failed_round = False
            done: set[int] = set()
            for item, result in zip(batch, results, strict=True):
                event = self.outcomes.judge(item, result, report)
                if event is None and not item.parked:
                    failed_round = True
                else:  # decided, or parked on a full quota (the launcher hands it back)
                    events.extend([event] if event is not None else [])
                    done.add(id(item))
            outbox.add(events)
            pending = [p for p in pending if id(p) not in done]
            if pending and self.health.is_down(self.cluster):
                # No answer from this cluster: its launches wait in the broker (or move to
                # another cluster), not in this thread.
                outbox.flush()
                return HandBack(pending, max(0.1, self.health.wait_s([self.cluster])))
            if failed_round:
                window = max(1, window // 2)
                growing = False
            elif growing and grant.granted == size:
                window = min(MAX_ROUND, window * 2)
        return None

    def _note_health(self, results: list[CreateResult]) -> None:
        """A round with an answer says the cluster is reachable; one where every create got
        none says it is not."""
        answered = [r for r in results if r.kind != "stale"]
        if not answered:
            return
        if all(isinstance(r.error, Unreachable) for r in answered):
            self.health.down(self.cluster)
        else:
            self.health.up(self.cluster)

    def _permit(self, queue: str | None, namespace: str, items: list[PendingPod],
                max_wait_s: float) -> Permit:
        return self.admission.acquire(queue, namespace, [_name(p) for p in items], max_wait_s)

    async def _round(self, batch: list[PendingPod], grant: Permit, created: dict[str, str],
                     stale_s: float) -> list[CreateResult]:
        """One slow-start round: the creates of ``batch`` concurrently, results in order.

        Each create waits for its own permit (``grant.due_at(i)``), so the pool
        never sends faster than the cluster-wide rate, even within one round.
        """
        return list(await asyncio.gather(
            *(self._create(item, grant.due_at(i), created, stale_s)
              for i, item in enumerate(batch))))

    async def _create(self, item: PendingPod, due_at: float, created: dict[str, str],
                      stale_s: float) -> CreateResult:
        """Create ``item``'s pod at its permit's time ``due_at`` (monotonic); a permit found
        stale (the process was paused past it) is not used: ``stale`` asks for a new one."""
        wait = due_at - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        if time.monotonic() - due_at > stale_s:
            return CreateResult("stale")
        namespace = item.request.namespace
        sent_at = time.time()
        began = time.perf_counter()
        try:
            pod = await self.aio.create_pod(namespace, item.pod)
        except AlreadyExists as exc:
            self._answered(began, exc.status)
            return CreateResult("exists", error=exc, sent_at=sent_at)
        except Conflict as exc:  # a race that is not about the name: try again
            self._answered(began, exc.status)
            return CreateResult("retry", error=exc, sent_at=sent_at)
        except KubeError as exc:
            self._answered(began, exc.status)
            return CreateResult("retry" if exc.retryable else "rejected", error=exc,
                                sent_at=sent_at)
        except Unreachable as exc:
            self._answered(began, 0)  # counted under code "0": no answer
            return CreateResult("retry", error=exc, sent_at=sent_at)
        self._answered(began, 201)
        # The record says "created" with the round's events; a pod deleted before that (its
        # worker killed meanwhile) was marked by the watcher's deleter first.
        created[item.request.launch_id] = self.cluster
        return CreateResult("created", pod=pod, sent_at=sent_at)

    def _answered(self, began: float, status: int) -> None:
        """Count one create: its duration, and its status (0 when no answer came)."""
        self._create_seconds.observe(time.perf_counter() - began)
        self._count_request(status)

    def _count_request(self, status: int) -> None:
        child = self._create_codes.get(status)
        if child is None:
            child = self._create_codes[status] = KUBE_REQUESTS.labels(cluster=self.cluster,
                                                                      verb=KubeVerb.CREATE,
                                                                      code=str(status))
        child.inc()


def _name(item: PendingPod) -> str:
    return str(item.pod["metadata"]["name"])
