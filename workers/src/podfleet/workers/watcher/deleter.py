"""Deleting finished pods: after their terminal event is published, once, rate-limited.

Airflow's watcher sends two or three deletes per pod, most of them answered 404 (#72803), and
leaves completed pods behind when it restarts (#15580). Here a pod is handed to the deleter only
after the script that published its terminal event returned, each pod uid is deleted at most
once per watcher (a second hand-over of the same uid is ignored), and a new watcher finds the
pods its predecessor did not get to in its first relist (finished, recorded as published, and
without a deletionTimestamp). 404 counts as done.

With a :class:`~podfleet.workers.watcher.log_keeper.PodLogKeeper`, each pod's log is archived
just before its delete; a failed archive is retried ``archive_attempts`` times in all, then
the pod is deleted without it.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

import redis

from podfleet.contracts.keys import TaskKey
from podfleet.kube.errors import KubeError, Unreachable
from podfleet.monitoring.metrics import PODS_DELETED, PodDeleteResult
from podfleet.settings import DeletePolicy
from podfleet.workers.launch_records import CREATED, LaunchRecords
from podfleet.workers.watcher.lease import WatcherLease
from podfleet.workers.watcher.log_keeper import Kept, PodLogKeeper, count
from podfleet.workers.watcher.phases import Stage

log = logging.getLogger(__name__)


def should_delete(policy: DeletePolicy, stage: Stage) -> bool:
    """True when ``policy`` deletes a pod whose final published stage is ``stage``."""
    if stage is Stage.SUCCEEDED:
        return policy in (DeletePolicy.ALWAYS, DeletePolicy.ON_SUCCESS)
    if stage is Stage.FAILED:
        return policy in (DeletePolicy.ALWAYS, DeletePolicy.ON_FAILURE)
    return False


class PodDeleteClient(Protocol):
    def delete_pod(self, namespace: str, name: str, *,
                   grace_period_seconds: int | None = None) -> bool: ...


@dataclass(order=True, slots=True)
class _Due:
    due: float  # time.monotonic()
    sequence: int
    namespace: str
    name: str
    uid: str
    attempts: int = 0
    #: The pod's task try, launch id and task container: where its log is archived.
    task: tuple[TaskKey, str, str | None] | None = field(default=None, compare=False)
    archive_attempts: int = field(default=0, compare=False)


class PodDeleter:
    """A thread that deletes handed-over pods when due, ``rate`` per second at most (0 = no
    limit), ``concurrency`` requests at a time."""

    def __init__(self, kube: PodDeleteClient, lease: WatcherLease, *, policy: DeletePolicy,
                 delay_seconds: float = 0.0, rate: float = 100.0, concurrency: int = 8,
                 max_attempts: int = 5, log_keeper: PodLogKeeper | None = None,
                 archive_attempts: int = 3, records: LaunchRecords | None = None) -> None:
        self.kube = kube
        self.records = records
        self.lease = lease
        self.policy = policy
        self.delay_seconds = delay_seconds
        self.rate = rate
        self.concurrency = max(1, concurrency)
        self.max_attempts = max_attempts
        self.log_keeper = log_keeper
        self.archive_attempts = max(1, archive_attempts)
        self._heap: list[_Due] = []
        self._handed: set[str] = set()
        self._sequence = 0
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None

    def hand_over(self, namespace: str, name: str, uid: str, stage: Stage,
                  finished_at: float | None = None, *,
                  task: tuple[TaskKey, str, str | None] | None = None) -> bool:
        """Schedule one finished pod for deletion if the policy says so; True if scheduled.

        ``finished_at`` (Unix seconds) starts the delay from when the pod finished rather than
        from now, so pods found by a relist long after they ended are not kept twice as long.
        ``task`` (key, launch id, container) says where the pod's log is archived.
        """
        if self.policy is DeletePolicy.NEVER or not should_delete(self.policy, stage):
            return False
        with self._cond:
            if uid in self._handed:
                return False
            self._handed.add(uid)
            wait = self.delay_seconds
            if finished_at is not None and wait > 0:
                wait = max(0.0, wait - max(0.0, time.time() - finished_at))
            self._sequence += 1
            heapq.heappush(self._heap, _Due(time.monotonic() + wait, self._sequence,
                                            namespace, name, uid, task=task))
            self._cond.notify()
        return True

    def forget(self, uid: str) -> None:
        """The pod is gone (DELETED seen): its uid need not be remembered any longer."""
        with self._cond:
            self._handed.discard(uid)

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._heap)

    def start(self) -> PodDeleter:
        if self._thread is None:
            self._pool = ThreadPoolExecutor(self.concurrency,
                                            thread_name_prefix="podfleet-delete")
            self._thread = threading.Thread(target=self._run, daemon=True,
                                            name="podfleet-watcher-deleter")
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def _take_due(self) -> list[_Due]:
        """Block until some deletions are due; return up to one rate-limited batch."""
        with self._cond:
            while not self._stopping:
                now = time.monotonic()
                if self._heap and self._heap[0].due <= now:
                    size = self.concurrency * 4
                    if self.rate > 0:
                        size = max(1, min(size, int(self.rate / 10) or 1))
                    batch: list[_Due] = []
                    while self._heap and self._heap[0].due <= now and len(batch) < size:
                        batch.append(heapq.heappop(self._heap))
                    return batch
                self._cond.wait(min(1.0, self._heap[0].due - now) if self._heap else 1.0)
            return []

    def _run(self) -> None:
        assert self._pool is not None
        while True:
            batch = self._take_due()
            if not batch:
                return
            if not self.lease.held:
                # Deletes are not fenced: a watcher that may have lost its lease stops here.
                return
            if not self._record_created(batch):
                continue
            started = time.monotonic()
            list(self._pool.map(self._delete, batch))
            if self.rate > 0:
                # Spread batches so that the average stays at or under `rate` per second.
                rest = len(batch) / self.rate - (time.monotonic() - started)
                if rest > 0:
                    with self._cond:
                        self._cond.wait_for(lambda: self._stopping, timeout=rest)

    def _record_created(self, batch: list[_Due]) -> bool:
        """Mark each pod's launch as created before the pod goes, so no redelivered launch
        (its first create's answer lost with a killed worker) makes it again. On a Redis
        error the batch waits and is tried again: a pod is never deleted unrecorded."""
        if self.records is None:
            return True
        try:
            cluster = self.records.keys.cluster
            self.records.finish((item.task[1], CREATED, item.uid, cluster)
                                for item in batch if item.task is not None)
        except redis.RedisError as exc:
            log.warning("cannot record launches before deleting their pods: %s", exc)
            with self._cond:
                for item in batch:
                    item.due = time.monotonic() + 1.0
                    heapq.heappush(self._heap, item)
                self._cond.wait_for(lambda: self._stopping, timeout=1.0)
            return False
        return True

    def _delete(self, item: _Due) -> None:
        if self.log_keeper is not None and item.task is not None and not self._keep_log(item):
            return
        try:
            # NotFound is an answer here, not an error: delete_pod says False (already gone).
            gone = not self.kube.delete_pod(item.namespace, item.name)
        except (KubeError, Unreachable) as exc:
            item.attempts += 1
            if exc.retryable and item.attempts < self.max_attempts:
                backoff = exc.retry_after or min(30.0, 0.5 * 2 ** item.attempts)
                item.due = time.monotonic() + backoff
                with self._cond:
                    heapq.heappush(self._heap, item)
                    self._cond.notify()
                return
            PODS_DELETED.labels(result=PodDeleteResult.FAILED).inc()
            log.warning("could not delete finished pod %s/%s: %s", item.namespace, item.name,
                        exc)
            return
        PODS_DELETED.labels(
            result=PodDeleteResult.ALREADY_GONE if gone else PodDeleteResult.DELETED).inc()

    def _keep_log(self, item: _Due) -> bool:
        """Archive the pod's log; False when the attempt failed and was scheduled again."""
        assert self.log_keeper is not None and item.task is not None
        key, launch_id, container = item.task
        result = self.log_keeper.keep(item.namespace, item.name, key, launch_id, container)
        item.archive_attempts += 1
        final = result is not Kept.FAILED or item.archive_attempts >= self.archive_attempts
        count(result, final=final)
        if final:
            if result is Kept.FAILED:
                log.error("giving up archiving the log of pod %s/%s after %d attempts; "
                          "deleting it anyway", item.namespace, item.name,
                          item.archive_attempts)
            item.task = None  # done with its log, whatever happens to the delete
            return True
        item.due = time.monotonic() + min(10.0, 0.5 * 2 ** item.archive_attempts)
        with self._cond:
            heapq.heappush(self._heap, item)
            self._cond.notify()
        return False
