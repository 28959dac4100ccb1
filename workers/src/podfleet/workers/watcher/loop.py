"""The watch loop: list, reconcile, watch with bookmarks, publish in fenced batches, relist on 410.

Airflow's KubernetesJobWatcher keeps its resourceVersion in memory, restarts from "0" (replaying
history) or dies on "410 Expired", and freezes silently on a dead connection. This loop instead:

* keeps its resourceVersion (RV) in Redis, written in the same fenced script as the events it
  accounts for, plus a per-pod record of what was last published (``phases.Published``);
* on start resumes the watch from the stored RV; with none, or when the API says it is too old
  (410, as an ERROR event or an HTTP status), it *lists* the pods and *reconciles* the list with
  the records - publishing each missed change once, and a REQUEUE/FAILED for pods that vanished
  unwatched - then watches from the list's RV. It never watches from "0";
* requests bookmarks, so the RV advances even when no podfleet pod changes, and treats silence
  longer than the read timeout (longer than the bookmark interval) as a dead connection;
* reconnects after dropped connections, timeouts and API errors with jittered exponential
  backoff, counting each restart by reason;
* decodes the watch stream on a reader thread, only the pod fields it reads
  (``podfleet.kube.watch_events``), and publishes whatever has arrived as one batch (one Redis
  round trip), so batches grow with load and latency stays low at rest.

One :class:`ScopeWatch` runs per watch scope (a namespace, or all namespaces); a
:class:`Watcher` runs them, the lease's renewal and the pod deleter for as long as the lease
is held.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis

from podfleet.contracts import pod_status
from podfleet.contracts.clusters import DEFAULT_CLUSTER, ClusterSpec
from podfleet.contracts.keys import TaskKey
from podfleet.contracts.naming import MANAGED_SELECTOR, QUEUE_ANNOTATION, task_identity
from podfleet.contracts.redis_keys import RedisKeys
from podfleet.contracts.states import TaskState
from podfleet.kube.client import PodList
from podfleet.kube.errors import Gone, KubeError, Unreachable, error_from_status
from podfleet.logs.archive import LogArchive
from podfleet.logs.failures import ArchiveFailures
from podfleet.monitoring.metrics import (
    CLUSTER_REACHABLE,
    POD_START_LATENCY,
    WATCH_EVENTS,
    WATCH_RESTARTS,
    WATCHER_LAST_EVENT,
    WatchRestartReason,
)
from podfleet.settings import DeletePolicy, Settings
from podfleet.workers.admission.pending_view import active_view, pending_view, view_changes
from podfleet.workers.launch_records import LaunchRecords
from podfleet.workers.watcher import phases
from podfleet.workers.watcher.deleter import PodDeleter
from podfleet.workers.watcher.lease import LeaseLost, WatcherLease
from podfleet.workers.watcher.log_keeper import ArchivePruner, PodLogKeeper
from podfleet.workers.watcher.phases import Published, Stage, Transition
from podfleet.workers.watcher.publisher import Batch, FencedPublisher, scope_name

log = logging.getLogger(__name__)


class PodSource(Protocol):
    """What the loop needs from the API (``podfleet.kube.client.KubeClient`` provides it)."""

    def list_pods(self, namespace: str | None = None, *, label_selector: str | None = None,
                  field_selector: str | None = None, page_size: int = 500) -> PodList: ...

    def watch_pods(self, namespace: str | None = None, *, resource_version: str | None,
                   label_selector: str | None = None, timeout_seconds: int = 300,
                   allow_bookmarks: bool = True,
                   read_timeout: float = 60.0) -> Iterator[dict[str, Any]]: ...

    def delete_pod(self, namespace: str, name: str, *,
                   grace_period_seconds: int | None = None) -> bool: ...

    def delete_pods(self, namespace: str, label_selector: str, *,
                    timeout: float | None = None) -> list[str]: ...

    def stream_pod_log(self, namespace: str, name: str, *, container: str | None = None,
                       follow: bool = False, tail_lines: int | None = None,
                       timestamps: bool = False, previous: bool = False,
                       read_timeout: float | None = None) -> Iterator[bytes]: ...


@dataclass(frozen=True, slots=True)
class WatchOptions:
    """How the watcher watches; :meth:`from_settings` fills it from ``PODFLEET_*``.

    The fields that come from settings have no defaults here: their defaults are the settings'.
    """

    #: Namespaces to watch; ``("*",)`` = all namespaces (one cluster-wide watch).
    namespaces: tuple[str, ...]
    fatal_reasons: frozenset[str]
    delete_policy: DeletePolicy
    delete_delay_seconds: float
    #: Pod deletions per second (0 = no limit).
    delete_rate: float
    #: Where finished pods' logs are archived before their delete (None: not archived), and
    #: after how many days the archive drops them (0: never).
    log_archive: str | None
    log_retention_days: float
    label_selector: str = MANAGED_SELECTOR
    #: Task queues whose pools (pods not finished) a relist rebuilds, besides those its pods
    #: name.
    queues: tuple[str, ...] = ("default",)
    #: Pod deletions at once.
    delete_concurrency: int = 8
    #: The API server ends each watch after about this long (jittered), as client-go does.
    watch_timeout_seconds: int = 300
    #: Silence longer than this is a dead connection; must exceed the bookmark interval (~60 s).
    read_timeout_seconds: float = 90.0
    #: Most task events + records per publish; larger arrivals are split.
    max_batch: int = 500
    #: An RV that changed without events (bookmarks, pods scheduled) is stored this often.
    idle_rv_flush_seconds: float = 1.0
    backoff_initial_seconds: float = 0.2
    backoff_max_seconds: float = 10.0
    list_page_size: int = 500
    #: Relist (and reconcile the records against the list) this often even when the watch is
    #: healthy, so records that drifted from the cluster are repaired; 0 = only on demand.
    resync_seconds: float = 0.0
    #: The cluster watched: every event published names it.
    cluster: str = DEFAULT_CLUSTER

    @classmethod
    def from_settings(cls, settings: Settings, cluster: ClusterSpec | None = None,
                      **overrides: Any) -> WatchOptions:
        """The options of the watcher of ``cluster`` (None: the first configured, which is
        ``default`` without a clusters file): its namespaces, and its launch rate as the
        rate finished pods are deleted at."""
        spec = cluster or settings.clusters.configured[0]
        values: dict[str, Any] = {
            "cluster": spec.name,
            "namespaces": spec.namespaces,
            "fatal_reasons": settings.watcher.fatal_container_reasons,
            "delete_policy": settings.pods.delete_policy,
            "delete_delay_seconds": settings.pods.delete_delay_seconds,
            "log_archive": settings.logs.archive,
            "log_retention_days": settings.logs.retention_days,
            # Finished pods leave at the rate new ones may arrive.
            "delete_rate": spec.launch_rate,
            "resync_seconds": settings.watcher.resync_seconds,
            "queues": ("default", *settings.launch.queue_rates),
        }
        values.update(overrides)
        return cls(**values)

    @property
    def scopes(self) -> list[str | None]:
        """One watch per namespace; None = all namespaces."""
        if "*" in self.namespaces:
            return [None]
        return list(dict.fromkeys(self.namespaces))


@dataclass(slots=True)
class _StreamEnd:
    """Put on the queue by the reader when the stream ends (error None) or fails."""

    error: BaseException | None


# namespace, name, uid, final stage, finished at, (task key, launch id, task container)
_Deletion = tuple[str, str, str, Stage, "float | None", "tuple[TaskKey, str, str | None] | None"]


def _deletion(pod: dict[str, Any], uid: str, stage: Stage) -> _Deletion:
    """What the deleter needs of a finished pod, including where its log is archived."""
    meta = pod.get("metadata") or {}
    identity = task_identity(pod)
    task = None
    if identity is not None:
        containers = (pod.get("spec") or {}).get("containers") or [{}]
        task = (identity[0], identity[1], containers[0].get("name"))
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""), uid, stage,
            pod_status.finished_at(pod), task)


@dataclass(slots=True)
class _Pending:
    """A batch being built, plus what to do once it is published."""

    batch: Batch = field(default_factory=Batch)
    deletions: list[_Deletion] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)
    start_latencies: list[tuple[str, float]] = field(default_factory=list)


class ScopeWatch:
    """Lists, reconciles and watches one scope until stopped or the lease is lost."""

    def __init__(self, namespace: str | None, *, kube: PodSource, client: redis.Redis,
                 keys: RedisKeys, lease: WatcherLease, options: WatchOptions,
                 deleter: PodDeleter, stop: threading.Event) -> None:
        self.namespace = namespace
        self.scope = scope_name(namespace)
        self.kube = kube
        self.lease = lease
        self.options = options
        self.deleter = deleter
        self.stop = stop
        self.publisher = FencedPublisher(client, keys, self.scope, lease)
        self.records: dict[str, Published] = {}
        self.resource_version: str | None = None
        self._rv_published: str | None = None
        self._rv_flushed_at = 0.0
        self._reader_cancel: threading.Event | None = None
        self._backoff = options.backoff_initial_seconds
        #: Set when a write failed: the in-memory state may be ahead of Redis's.
        self._reload = False
        #: time.monotonic() of the last relist; another is due every ``resync_seconds``.
        self._relisted_at = time.monotonic()
        self._reachable = CLUSTER_REACHABLE.labels(cluster=options.cluster)

    # --- the outer loop -------------------------------------------------------------------

    def run(self) -> None:
        """Watch until ``stop`` is set or the lease is lost (LeaseLost ends it quietly)."""
        try:
            self.records = self.publisher.load_records()
            self.resource_version = self._rv_published = self.publisher.stored_resource_version()
            while not self._stopped():
                self._run_once()
        except LeaseLost:
            log.info("watch of %s stopped: lease lost", self.scope)
        finally:
            self._cancel_reader()

    def _run_once(self) -> None:
        reason: WatchRestartReason | None = None
        delay = 0.0
        try:
            if self._reload:
                self._reload_state()
            if self._relist_due():
                self.resource_version = None  # the periodic relist: level-triggered repair
            if self.resource_version is None:
                self.resource_version = self.relist()
            self._reachable.set(1)
            received = self.watch(self.resource_version)
            reason = (WatchRestartReason.RESYNC if self._relist_due()
                      else WatchRestartReason.CLOSED)
            if received:
                self._backoff = self.options.backoff_initial_seconds
        except Gone:  # as an ERROR event or as the HTTP answer: list again
            reason = WatchRestartReason.EXPIRED
            self.resource_version = None
        except Unreachable as exc:
            reason = (WatchRestartReason.TIMEOUT if exc.timed_out
                      else WatchRestartReason.ERROR)
            if not exc.timed_out or self.resource_version is None:
                self._reachable.set(0)
            delay = self._next_backoff()
            log.warning("watch of %s lost its connection (%s); retrying in %.1fs",
                        self.scope, exc, delay)
        except KubeError as exc:
            reason = WatchRestartReason.ERROR
            delay = max(self._next_backoff(), exc.retry_after or 0.0)
            log.warning("watch of %s failed (%s); retrying in %.1fs", self.scope, exc,
                        delay)
        except LeaseLost:
            raise
        except redis.RedisError as exc:
            # publish() retries lost connections itself; this is Redis refusing the write
            # (OOM at maxmemory, MISCONF, READONLY). The batch's records were folded into
            # memory already, so carrying on would skip its events for good: go back to what
            # Redis holds and watch again from there, which delivers them once more.
            reason = WatchRestartReason.REDIS_REFUSED
            delay = self._next_backoff()
            log.error("watch of %s: Redis refused a write (%s); reloading state, retrying in "
                      "%.1fs", self.scope, exc, delay)
            self._reload = True
        except Exception:
            # A bug must not end the fleet's only watcher: start over from Redis's state.
            reason = WatchRestartReason.ERROR
            delay = self._next_backoff()
            log.exception("watch of %s failed unexpectedly; reloading state", self.scope)
            self._reload = True
        if reason is not None and not self._stopped():
            WATCH_RESTARTS.labels(reason=reason).inc()
            if delay > 0:
                self.stop.wait(delay)

    def _reload_state(self) -> None:
        """Replace the in-memory records and RV with what Redis holds (what was published)."""
        self.records = self.publisher.load_records()
        self.resource_version = self._rv_published = self.publisher.stored_resource_version()
        self._reload = False

    def _relist_due(self) -> bool:
        period = self.options.resync_seconds
        return bool(period) and time.monotonic() - self._relisted_at >= period

    def _next_backoff(self) -> float:
        delay = self._backoff * random.uniform(0.5, 1.0)
        self._backoff = min(self._backoff * 2, self.options.backoff_max_seconds)
        return delay

    def _stopped(self) -> bool:
        if self.stop.is_set():
            return True
        if not self.lease.held:
            raise LeaseLost("lease lost")
        return False

    # --- list and reconcile ---------------------------------------------------------------

    def relist(self) -> str:
        """List the scope's pods, publish what the records miss, return the list's RV.

        The RV is stored with the last batch only: a crash part-way leaves the old RV (or none),
        so the next watcher reconciles again, and the records keep that from repeating events.
        """
        self._relisted_at = time.monotonic()
        listed = self.kube.list_pods(self.namespace, label_selector=self.options.label_selector,
                                     page_size=self.options.list_page_size)
        now_mono = time.monotonic()
        now = time.time()
        seen: set[str] = set()
        pending = _Pending()
        # What the list shows Pending, and each queue's pods not finished, per namespace:
        # admission's views are rebuilt from it.
        listed_views: dict[str, tuple[str, list[str]]] = {}
        for namespace in self._view_namespaces():
            listed_views[pending_view(namespace)] = (namespace, [])
            for queue_name in self.options.queues:
                listed_views[active_view(queue_name, namespace)] = (namespace, [])
        for pod in listed.items:
            meta = pod.get("metadata") or {}
            uid = str(meta.get("uid") or "")
            if not uid:
                continue
            seen.add(uid)
            prior = self.records.get(uid)
            transition = phases.observe(pod, prior, deleted=False,
                                        fatal_reasons=self.options.fatal_reasons, now=now)
            if transition is None:
                continue
            self._apply(uid, prior, transition, pending, now_mono, pod)
            after = transition.after
            namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
            if after is not None and after.stage is Stage.PENDING:
                listed_views.setdefault(pending_view(namespace), (namespace, []))[1].append(name)
            pool = _queue_of(pod)
            if pool is not None and after is not None and not after.stage.is_final:
                listed_views.setdefault(active_view(pool, namespace),
                                        (namespace, []))[1].append(name)
            if (transition.event is None and after is not None and after.stage.is_final
                    and not meta.get("deletionTimestamp")):
                # Finished and published before, but maybe never deleted (watcher died).
                pending.deletions.append(_deletion(pod, uid, after.stage))
            if len(pending.batch) >= self.options.max_batch:
                self._flush(pending)
                pending = _Pending()
        for uid in [u for u in self.records if u not in seen]:
            prior = self.records[uid]
            self._apply(uid, prior, phases.vanished(uid, prior, now), pending, now_mono, None)
        pending.batch.resource_version = listed.resource_version
        pending.batch.view_listed = listed_views
        self._flush(pending)
        log.info("relisted %s: %d pods, resourceVersion %s", self.scope, len(listed.items),
                 listed.resource_version)
        return listed.resource_version

    def _view_namespaces(self) -> list[str]:
        """The namespaces whose pending view a relist of this scope replaces."""
        if self.namespace is not None:
            return [self.namespace]
        return sorted(n.decode() if isinstance(n, bytes) else str(n) for n in
                      self.publisher.client.smembers(self.publisher.keys.admission_namespaces))

    # --- watch ----------------------------------------------------------------------------

    def watch(self, resource_version: str) -> int:
        """Watch from ``resource_version`` until the stream ends; return the events handled.

        Raises Gone on 410 (HTTP or ERROR event), another KubeError or Unreachable on
        failures, LeaseLost.
        Everything received before a failure is published before the failure is raised.
        """
        events: queue.SimpleQueue[dict[str, Any] | _StreamEnd] = queue.SimpleQueue()
        cancel = threading.Event()
        self._reader_cancel = cancel
        timeout = int(self.options.watch_timeout_seconds * random.uniform(1.0, 1.5))
        reader = threading.Thread(
            target=self._read, args=(resource_version, timeout, events, cancel), daemon=True,
            name=f"podfleet-watch-{self.scope}")
        reader.start()
        handled = 0
        try:
            while True:
                if self._stopped() or self._relist_due():
                    return handled
                try:
                    first = events.get(timeout=0.2)
                except queue.Empty:
                    self._flush_idle_rv()
                    continue
                items = [first]
                while len(items) < self.options.max_batch:
                    try:
                        items.append(events.get_nowait())
                    except queue.Empty:
                        break
                end = self._handle_items(items)
                handled += len(items)
                if end is not None:
                    if end.error is not None:
                        raise end.error
                    return handled
        finally:
            cancel.set()
            self._reader_cancel = None

    def _read(self, resource_version: str, timeout: int,
              out: queue.SimpleQueue[dict[str, Any] | _StreamEnd],
              cancel: threading.Event) -> None:
        try:
            stream = self.kube.watch_pods(
                self.namespace, resource_version=resource_version,
                label_selector=self.options.label_selector, timeout_seconds=timeout,
                allow_bookmarks=True, read_timeout=self.options.read_timeout_seconds)
            for event in stream:
                if cancel.is_set():
                    return
                out.put(event)
        except BaseException as exc:  # handed to the loop thread, which decides
            out.put(_StreamEnd(exc))
            return
        out.put(_StreamEnd(None))

    def _cancel_reader(self) -> None:
        if self._reader_cancel is not None:
            self._reader_cancel.set()

    def _handle_items(self, items: list[dict[str, Any] | _StreamEnd]) -> _StreamEnd | None:
        """Apply a run of watch events and publish them as one batch (or a few)."""
        pending = _Pending()
        counts: Counter[str] = Counter()
        received = time.monotonic()
        now = time.time()
        end: _StreamEnd | None = None
        for item in items:
            if isinstance(item, _StreamEnd):
                end = item
                break
            kind = str(item.get("type") or "")
            counts[kind] += 1
            obj = item.get("object") or {}
            if kind == "ERROR":
                end = _StreamEnd(_watch_error(obj))
                break
            rv = (obj.get("metadata") or {}).get("resourceVersion")
            if kind == "BOOKMARK":
                if rv:
                    self.resource_version = str(rv)
                continue
            if kind not in ("ADDED", "MODIFIED", "DELETED"):
                continue
            self._handle_pod(obj, deleted=kind == "DELETED", pending=pending,
                             received=received, now=now)
            if rv:
                self.resource_version = str(rv)
            if len(pending.batch) >= self.options.max_batch:
                self._flush(pending, with_rv=True)
                pending = _Pending()
        for kind, count in counts.items():
            WATCH_EVENTS.labels(type=kind).inc(count)
        if counts:
            WATCHER_LAST_EVENT.set(time.time())
        self._flush(pending, with_rv=True)
        return end

    def _handle_pod(self, pod: dict[str, Any], *, deleted: bool, pending: _Pending,
                    received: float, now: float) -> None:
        meta = pod.get("metadata") or {}
        uid = str(meta.get("uid") or "")
        if not uid:
            return
        prior = self.records.get(uid)
        transition = phases.observe(pod, prior, deleted=deleted,
                                    fatal_reasons=self.options.fatal_reasons, now=now)
        if transition is None:
            return
        self._apply(uid, prior, transition, pending, received, pod)
        if deleted:
            pending.forgotten.append(uid)

    def _apply(self, uid: str, prior: Published | None, transition: Transition,
               pending: _Pending, received: float, pod: dict[str, Any] | None) -> None:
        """Fold one transition into the batch and the in-memory records (which mirror Redis:
        only this watcher writes them while it holds the lease)."""
        after = transition.after
        where = pod.get("metadata") or {} if pod is not None else {}
        ident = prior.identity if prior is not None else None
        pending.batch.view_changes += view_changes(
            prior, after, str(where.get("namespace") or (ident.namespace if ident else "")),
            str(where.get("name") or (ident.name if ident else "")),
            _queue_of(pod) if pod is not None else None)
        if after != prior:
            if after is None:
                self.records.pop(uid, None)
                pending.batch.records[uid] = None
            else:
                self.records[uid] = after
                pending.batch.records[uid] = after.encode()
        event = transition.event
        if event is None:
            return
        if event.cluster != self.options.cluster:
            event = dataclasses.replace(event, cluster=self.options.cluster)
        pending.batch.add(event, received)
        latency = event.detail.get("start_latency_s")
        if isinstance(latency, float | int) and event.state is not TaskState.FAILED:
            pending.start_latencies.append((event.namespace or "", float(latency)))
        if pod is not None and after is not None and after.stage.is_final:
            meta = pod.get("metadata") or {}
            if not meta.get("deletionTimestamp"):
                pending.deletions.append(_deletion(pod, uid, after.stage))

    def _flush(self, pending: _Pending, *, with_rv: bool = False) -> None:
        """Publish the batch (fenced); then - and only then - schedule its deletions."""
        batch = pending.batch
        if (with_rv and self.resource_version
                and self.resource_version != self._rv_published
                and (batch.events or batch.records or self._rv_due())):
            batch.resource_version = self.resource_version
        if not batch.empty:
            self.publisher.publish(batch)
            if batch.resource_version is not None:
                self._rv_published = batch.resource_version
                self._rv_flushed_at = time.monotonic()
        for namespace, ns_latency in pending.start_latencies:
            POD_START_LATENCY.labels(namespace=namespace).observe(ns_latency)
        for uid in pending.forgotten:
            self.deleter.forget(uid)
        for namespace, name, uid, stage, finished, task in pending.deletions:
            self.deleter.hand_over(namespace, name, uid, stage, finished, task=task)

    def _rv_due(self) -> bool:
        return time.monotonic() - self._rv_flushed_at >= self.options.idle_rv_flush_seconds

    def _flush_idle_rv(self) -> None:
        """Store an RV that moved without task events (bookmarks) once in a while."""
        if (self.resource_version and self.resource_version != self._rv_published
                and self._rv_due()):
            self._flush(_Pending(), with_rv=True)


def _queue_of(pod: dict[str, Any]) -> str | None:
    """The task queue whose pool ``pod`` counts in (None: a pod from before pools)."""
    queue_name = ((pod.get("metadata") or {}).get("annotations") or {}).get(QUEUE_ANNOTATION)
    return str(queue_name) if queue_name else None


def _watch_error(obj: dict[str, Any]) -> KubeError:
    """The error an ERROR event's Status object names (Gone for an expired resourceVersion);
    a Status without a code counts as a server error."""
    code = obj.get("code")
    return error_from_status(code if isinstance(code, int) else 500, obj,
                             text="watch ended with an ERROR event")


class Watcher:
    """Everything one lease holder runs: a :class:`ScopeWatch` per scope and the deleter."""

    def __init__(self, *, kube: PodSource, client: redis.Redis, keys: RedisKeys,
                 lease: WatcherLease, options: WatchOptions) -> None:
        self.kube = kube
        self.client = client
        self.keys = keys
        self.lease = lease
        self.options = options

    def run(self, stop: threading.Event) -> None:
        """Watch until ``stop`` is set or the lease is lost; the caller releases the lease."""
        inner = threading.Event()
        keeper = pruner = None
        location = self.options.log_archive
        if location is not None:
            retention = self.options.log_retention_days
            keeper = PodLogKeeper(self.kube, lambda: LogArchive.open(location), ArchiveFailures(
                self.client, self.keys, **({"keep_seconds": retention * 86_400}
                                           if retention > 0 else {})))
            pruner = ArchivePruner(keeper, self.options.log_retention_days).start()
        deleter = PodDeleter(self.kube, self.lease,
                             policy=self.options.delete_policy,
                             delay_seconds=self.options.delete_delay_seconds,
                             rate=self.options.delete_rate,
                             concurrency=self.options.delete_concurrency,
                             log_keeper=keeper,
                             records=LaunchRecords(self.client, self.keys)).start()
        threads = []
        for namespace in self.options.scopes:
            scope = ScopeWatch(namespace, kube=self.kube, client=self.client, keys=self.keys,
                               lease=self.lease, options=self.options, deleter=deleter,
                               stop=inner)
            thread = threading.Thread(target=scope.run, daemon=True,
                                      name=f"podfleet-scope-{scope.scope}")
            thread.start()
            threads.append(thread)
        try:
            while not stop.is_set() and self.lease.held and any(t.is_alive() for t in threads):
                if self.lease.lost.wait(0.2):
                    break
        finally:
            inner.set()
            for thread in threads:
                thread.join(timeout=5)
            deleter.stop()
            if pruner is not None:
                pruner.stop()
