"""The watcher as a dramatiq actor, and the supervisor that keeps one running.

Two ways start a watcher, and both end in :func:`run_watcher`, which takes the lease or
returns at once:

* **The supervisor** (:class:`WatcherSupervisor`, a dramatiq middleware). Every worker process
  runs one light thread (started in ``after_worker_boot``) that tries the lease every
  :func:`supervisor_interval` seconds. When the lease is free it runs the watcher *in that
  thread, in that process* - not through a message - so a new watcher starts within the lease
  time plus one interval of the old one's death however busy or stalled the launch queue is,
  and it occupies no dramatiq worker thread. Trying costs one EVALSHA per interval per process.
* **The actor** ``WATCH_ACTOR_NAME`` on its own queue :data:`WATCH_QUEUE`. ``Executor.sync``
  sends it when it sees no lease holder, for deployments whose workers do not run the
  supervisor (or as a nudge). It has ``max_retries=0`` (a failed or duplicate watcher must not
  be re-run by dramatiq: the supervisor and the next nudge take care of that) and no time limit
  (dramatiq's default 10 minutes would kill the watcher mid-stream); worker shutdown reaches it
  through a process-wide stop event and dramatiq's ``Shutdown`` interrupt.

A duplicate start - two supervisors, the actor twice - finds the lease taken and returns.

Each configured cluster (``settings.clusters``) has a watcher of its own: its own lease,
fencing token and resourceVersions in Redis (``RedisKeys.for_cluster``), its own client,
deleter and log keeper. A supervisor runs one thread per cluster, so each cluster's watcher is
taken over on its own when its holder dies, and a cluster whose API server cannot be reached
only has its own watcher retrying. The actor takes the cluster as its argument (none: the
``default`` cluster, as messages sent before clusters existed).

Importing this module declares nothing: :func:`podfleet.workers.boot.boot` calls
:func:`declare_watch_actor` and :func:`install_supervisor` unless the watcher is disabled.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import dramatiq
import redis
from dramatiq.middleware import Interrupt

from podfleet.broker import WATCH_ACTOR_NAME, WATCH_QUEUE
from podfleet.contracts.clusters import DEFAULT_CLUSTER
from podfleet.contracts.redis_keys import RedisKeys
from podfleet.kube.client import KubeClient
from podfleet.monitoring.metrics import CLUSTER_REACHABLE, kube_request_observer
from podfleet.redis_client import connect as connect_redis
from podfleet.settings import Settings
from podfleet.workers.watcher.lease import REDIS_ERRORS, WatcherLease
from podfleet.workers.watcher.loop import PodSource, Watcher, WatchOptions

log = logging.getLogger(__name__)


#: Set when this worker process shuts down: every watcher running in it stops.
PROCESS_STOPPING = threading.Event()


def supervisor_interval(lease_seconds: float) -> float:
    """How often a supervisor tries the lease: a fifth of the lease time, 0.1-2 s."""
    return min(2.0, max(0.1, lease_seconds / 5))


def run_watcher(settings: Settings, stop: threading.Event, *,
                kube: PodSource | None = None, client: redis.Redis | None = None,
                options: WatchOptions | None = None, holder: str | None = None,
                cluster: str | None = None) -> bool:
    """Be the watcher of ``cluster`` (None: the first configured) if nobody is: take its
    lease, watch until ``stop`` or the lease is lost, release it. Returns False at once when
    someone else holds the lease."""
    spec = settings.clusters.named(cluster) if cluster else settings.clusters.configured[0]
    own_client = client is None
    redis_client = client or connect_redis(settings.redis.url, socket_timeout=10,
                                           socket_connect_timeout=5, health_check_interval=30)
    own_kube: KubeClient | None = None
    try:
        keys = RedisKeys(settings.redis.prefix).for_cluster(spec.name)
        lease = WatcherLease(redis_client, keys, lease_seconds=settings.watcher.lease_seconds,
                             holder=holder)
        if not lease.try_acquire():
            return False
        try:
            lease.start_renewing()
            if kube is None:
                own_kube = KubeClient.from_cluster(
                    spec, timeout_seconds=settings.kubernetes.timeout_seconds,
                    observe=kube_request_observer(spec.name))
            Watcher(kube=kube or own_kube,  # type: ignore[arg-type]
                    client=redis_client, keys=keys, lease=lease,
                    options=options or WatchOptions.from_settings(settings, spec)).run(stop)
        finally:
            lease.release()
            # Not this process's to report any more (the gauge is the live processes' lowest).
            CLUSTER_REACHABLE.labels(cluster=spec.name).set(1)
        return True
    finally:
        if own_kube is not None:
            own_kube.close()
        if own_client:
            redis_client.close()


class WatcherSupervisor(dramatiq.Middleware):
    """Keeps a watcher of every cluster running somewhere in the fleet: one checking thread
    per cluster per worker process."""

    def __init__(self, settings: Settings | None = None, *,
                 interval_seconds: float | None = None) -> None:
        self._settings = settings
        self.interval_seconds = interval_seconds
        self._threads: list[threading.Thread] = []

    def after_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        PROCESS_STOPPING.clear()
        settings = self._settings or Settings.from_env()
        self._threads = [
            threading.Thread(target=self.run, args=(PROCESS_STOPPING, name),
                             name=f"podfleet-watcher-supervisor-{name}", daemon=True)
            for name in settings.clusters.names]
        for thread in self._threads:
            thread.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        PROCESS_STOPPING.set()
        for thread in self._threads:
            # The watcher releases its lease on the way out, so a peer takes over at once.
            thread.join(timeout=10)

    def run(self, stop: threading.Event, cluster: str | None = None) -> None:
        """Try ``cluster``'s lease (None: the first configured) now and every interval;
        watch whenever it is ours."""
        settings = self._settings or Settings.from_env()
        interval = self.interval_seconds or supervisor_interval(settings.watcher.lease_seconds)
        client = connect_redis(settings.redis.url, socket_timeout=10,
                               socket_connect_timeout=5, health_check_interval=30)
        try:
            while not stop.is_set():
                try:
                    run_watcher(settings, stop, client=client, cluster=cluster)
                except REDIS_ERRORS as exc:
                    log.warning("watcher supervisor cannot reach Redis: %s", exc)
                except Exception:
                    log.exception("watcher of cluster %s failed; the supervisor will try "
                                  "again", cluster or DEFAULT_CLUSTER)
                stop.wait(interval)
        finally:
            client.close()


def watch(settings: Settings, cluster: str | None = None) -> None:
    """The actor's body: run ``cluster``'s watcher here if no one does; return when it
    ends."""
    try:
        run_watcher(settings, PROCESS_STOPPING, cluster=cluster)
    except Interrupt:
        # Shutdown (worker stopping) or a TimeLimit somebody configured: the lease was
        # released on the way out; returning acks the message so it is not redelivered.
        log.info("watcher actor interrupted; stopping")


def install_supervisor(broker: dramatiq.Broker, settings: Settings) -> WatcherSupervisor:
    """Add a :class:`WatcherSupervisor` to ``broker`` once (before the worker boots); return
    the one it has."""
    for middleware in broker.middleware:
        if isinstance(middleware, WatcherSupervisor):
            return middleware
    supervisor = WatcherSupervisor(settings)
    broker.add_middleware(supervisor)
    return supervisor


def declare_watch_actor(broker: dramatiq.Broker, settings: Settings
                        ) -> dramatiq.Actor[[str], None]:
    """Declare ``WATCH_ACTOR_NAME`` on :data:`WATCH_QUEUE` of ``broker``.

    Called by :func:`podfleet.workers.boot.boot` together with :func:`install_supervisor`:
    every worker process that runs the watcher actor also supervises.
    """

    def podfleet_watch(cluster: str = DEFAULT_CLUSTER) -> None:
        if cluster not in settings.clusters.names:
            log.warning("watch nudge for cluster %r, which this worker does not have", cluster)
            return
        watch(settings, cluster)

    actor: dramatiq.Actor[[str], None] = dramatiq.actor(
        actor_name=WATCH_ACTOR_NAME, queue_name=WATCH_QUEUE, broker=broker, max_retries=0,
        time_limit=float("inf"), notify_shutdown=True)(podfleet_watch)
    return actor
