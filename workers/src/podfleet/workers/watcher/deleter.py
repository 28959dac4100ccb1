"""Deleting finished pods: after their terminal event is published, once, rate-limited.

Airflow's watcher sends two or three deletes per pod, most of them answered 404 (#72803), and
leaves completed pods behind when it restarts (#15580). Here a pod is handed to the deleter only
after the script that published its terminal event returned, each pod uid is deleted at most
once per watcher (a second hand-over of the same uid is ignored), and a new watcher finds the
pods its predecessor did not get to in its first relist (finished, recorded as published, and
without a deletionTimestamp). 404 counts as done.

The pods of one batch go in one request per namespace: a DeleteCollection whose label
selector names their launch ids (``podfleet.io/launch-id in (…)``, with podfleet's managed
label), which the API server answers with the pods it deleted; the others were gone already.
A launch id names one pod (the pod's name derives from it), so the selector matches exactly
the batch's pods - or a copy of one re-applied under another name with its labels, which
the executor deletes on sight anyway. One request instead of one per pod is most of what the
deleter costs (measured: docs/benchmarks.md). A Role without ``deletecollection`` (one from
before it was needed) is answered 403: the deleter then says so once and deletes pod by pod.

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
from podfleet.contracts.naming import LAUNCH_ID_LABEL, MANAGED_SELECTOR
from podfleet.kube.errors import (
    BadRequest,
    Forbidden,
    KubeError,
    QuotaExceeded,
    Unreachable,
)
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

    def delete_pods(self, namespace: str, label_selector: str, *,
                    timeout: float | None = None) -> list[str]: ...


#: How long a batch that is not full waits for more pods to come due.
LINGER_SECONDS = 0.2

#: Most pods one DeleteCollection names (its selector's length stays a few KB).
COLLECTION_MAX = 100


def launches_selector(launch_ids: list[str]) -> str:
    """The label selector of exactly these launches' pods."""
    return f"{MANAGED_SELECTOR},{LAUNCH_ID_LABEL} in ({','.join(launch_ids)})"


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
    #: The pod's launch id (its label): how a DeleteCollection names it. None: by name only.
    launch_id: str | None = field(default=None, compare=False)


class PodDeleter:
    """A thread that deletes handed-over pods when due, ``rate`` per second at most (0 = no
    limit), ``concurrency`` requests at a time."""

    def __init__(self, kube: PodDeleteClient, lease: WatcherLease, *, policy: DeletePolicy,
                 delay_seconds: float = 0.0, rate: float = 100.0, concurrency: int = 8,
                 max_attempts: int = 5, log_keeper: PodLogKeeper | None = None,
                 archive_attempts: int = 3, records: LaunchRecords | None = None,
                 linger_seconds: float = LINGER_SECONDS) -> None:
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
        self.linger_seconds = max(0.0, linger_seconds)
        self._heap: list[_Due] = []
        self._handed: set[str] = set()
        self._sequence = 0
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        #: False once the API refused a DeleteCollection (403): pod by pod from then on.
        self._collections = True

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
                                            namespace, name, uid, task=task,
                                            launch_id=task[1] if task is not None else None))
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

    def _batch_size(self) -> int:
        size = self.concurrency * 4
        if self.rate > 0:
            size = max(1, min(size, int(self.rate / 10) or 1))
        return size

    def _take_due(self) -> list[_Due]:
        """Block until some deletions are due; return up to one rate-limited batch.

        A batch waits until ``linger_seconds`` after its first pod was due, for others to
        come due, so pods finishing in a stream go a batch per request rather than one each;
        a backlog (its first pod due longer ago) goes at once.
        """
        size = self._batch_size()
        with self._cond:
            while not self._stopping:
                now = time.monotonic()
                if self._heap and self._heap[0].due + self.linger_seconds <= now:
                    batch: list[_Due] = []
                    while self._heap and self._heap[0].due <= now and len(batch) < size:
                        batch.append(heapq.heappop(self._heap))
                    return batch
                wake = self._heap[0].due + self.linger_seconds - now if self._heap else 1.0
                self._cond.wait(min(1.0, wake))
            return []

    def _run(self) -> None:
        assert self._pool is not None
        while True:
            batch = self._take_due()
            if not batch:
                return
            if not self.lease.held:
                # Deletes are not fenced: a watcher that may have lost its lease deletes
                # nothing. Its local deadline can pass for an instant (a renewal late on a
                # starved CPU) and the term go on once renewed, so the deleter ends only with
                # the lease; until then it holds the batch.
                if self._hold(batch):
                    return
                continue
            if not self._record_created(batch):
                continue
            started = time.monotonic()
            if self.log_keeper is not None:
                batch = self._logs_kept(batch)
            self._delete_all(batch)
            if self.rate > 0:
                # Spread batches so that the average stays at or under `rate` per second.
                rest = len(batch) / self.rate - (time.monotonic() - started)
                if rest > 0:
                    with self._cond:
                        self._cond.wait_for(lambda: self._stopping, timeout=rest)

    def _hold(self, batch: list[_Due]) -> bool:
        """Put ``batch`` back while the lease may be gone; True once it is lost for good
        (or the deleter stops), False when it is held again and deleting may go on."""
        self._put_back(batch)
        self.lease.lost.wait(timeout=0.1)
        return self.lease.lost.is_set() or self._stopping

    def _put_back(self, items: list[_Due], due: float | None = None) -> None:
        """Return ``items`` to the heap, due at ``due`` (``time.monotonic()``) when given."""
        with self._cond:
            for item in items:
                if due is not None:
                    item.due = due
                heapq.heappush(self._heap, item)
            self._cond.notify()

    def _record_created(self, batch: list[_Due]) -> bool:
        """Mark each pod's launch as created before the pod goes, so no redelivered launch
        (its first create's answer lost with a killed worker, or its fetch lost with a
        failed-over primary) makes it again. The records must reach a replica when Redis has
        one: a promoted replica without them would let a redelivery create the pod again. On
        a Redis error, or no replica holding them in time, the batch waits and is tried
        again: a pod is never deleted unrecorded."""
        if self.records is None:
            return True
        try:
            cluster = self.records.keys.cluster
            replicated = self.records.finish_replicated(
                (item.task[1], CREATED, item.uid, cluster)
                for item in batch if item.task is not None)
            if not replicated:
                log.warning("no replica took the launch records of %d pod(s) to delete; "
                            "their deletes wait", len(batch))
        except redis.RedisError as exc:
            replicated = False
            log.warning("cannot record launches before deleting their pods: %s", exc)
        if not replicated:
            self._put_back(batch, due=time.monotonic() + 1.0)
            with self._cond:
                self._cond.wait_for(lambda: self._stopping, timeout=1.0)
            return False
        return True

    def _logs_kept(self, batch: list[_Due]) -> list[_Due]:
        """Archive the batch's logs, ``concurrency`` at a time; return the pods done with
        theirs (the others were scheduled again). Each thread takes a share of the batch
        rather than a pod at a time: a hand-over per pod cost more than reading its log."""
        assert self._pool is not None
        shares = min(self.concurrency, len(batch))

        def keep(share: list[_Due]) -> list[_Due]:
            return [item for item in share if item.task is None or self._keep_log(item)]

        return [item for done in self._pool.map(keep, [batch[i::shares] for i in range(shares)])
                for item in done]

    def _delete_all(self, batch: list[_Due]) -> None:
        """Delete the batch's pods: a DeleteCollection per namespace, or one by one."""
        by_namespace: dict[str, list[_Due]] = {}
        singles: list[_Due] = []
        for item in batch:
            if self._collections and item.launch_id is not None:
                by_namespace.setdefault(item.namespace, []).append(item)
            else:
                singles.append(item)
        for namespace, items in by_namespace.items():
            for start in range(0, len(items), COLLECTION_MAX):
                singles += self._delete_collection(namespace, items[start:start + COLLECTION_MAX])
        if singles:
            assert self._pool is not None
            list(self._pool.map(self._delete, singles))

    def _delete_collection(self, namespace: str, items: list[_Due]) -> list[_Due]:
        """One DeleteCollection for ``items``; returns those left to delete one by one."""
        selector = launches_selector([item.launch_id or "" for item in items])
        try:
            deleted = set(self.kube.delete_pods(namespace, selector))
        except (KubeError, Unreachable) as exc:
            if isinstance(exc, Forbidden) and not isinstance(exc, QuotaExceeded):
                self._collections = False
                log.warning("the API refused to delete finished pods in one request (%s); "
                            "deleting them one by one: grant the workers' Role "
                            "'deletecollection' on pods", exc)
                return items
            if isinstance(exc, BadRequest):  # a launch id no selector can name: by name
                return items
            for item in items:
                self._failed(item, exc)
            return []
        for item in items:
            PODS_DELETED.labels(result=PodDeleteResult.DELETED if item.name in deleted
                                else PodDeleteResult.ALREADY_GONE).inc()
        return []

    def _delete(self, item: _Due) -> None:
        try:
            # NotFound is an answer here, not an error: delete_pod says False (already gone).
            gone = not self.kube.delete_pod(item.namespace, item.name)
        except (KubeError, Unreachable) as exc:
            self._failed(item, exc)
            return
        PODS_DELETED.labels(
            result=PodDeleteResult.ALREADY_GONE if gone else PodDeleteResult.DELETED).inc()

    def _failed(self, item: _Due, exc: KubeError | Unreachable) -> None:
        """A delete that failed: scheduled again with backoff while that may help."""
        item.attempts += 1
        if exc.retryable and item.attempts < self.max_attempts:
            backoff = exc.retry_after or min(30.0, 0.5 * 2 ** item.attempts)
            self._put_back([item], due=time.monotonic() + backoff)
            return
        PODS_DELETED.labels(result=PodDeleteResult.FAILED).inc()
        log.warning("could not delete finished pod %s/%s: %s", item.namespace, item.name, exc)

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
        self._put_back([item], due=time.monotonic() + min(10.0, 0.5 * 2 ** item.archive_attempts))
        return False
