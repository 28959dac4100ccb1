"""Placement: which of a launch's eligible clusters its pod goes to, and when it may move.

A launch request names the clusters it may run on (``LaunchRequest.clusters``, from
``podfleet.contracts.clusters.eligible_clusters`` at submit). The launcher spreads launches
over those that are reachable (a stable hash of the launch id picks where each starts, so
clusters share the load without coordination), and each cluster's admission then says
whether there is room (its pending cap, rate and quota). A launch that finds no room, or
whose cluster stops answering, moves to the next eligible cluster, like Armada's placement
across executors, but only when podfleet knows no pod exists for it where it was: a create
that was never sent, or that was answered with an error that makes no pod (429, a full
quota), or a GET that found nothing. A create whose outcome is unknown pins the launch to
its cluster until a GET there answers (``podfleet.workers.launch_records``: ``claimed@``).
"""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Collection

from podfleet.contracts.messages import LaunchRequest
from podfleet.monitoring.metrics import CLUSTER_REACHABLE

#: A cluster found unreachable is left alone this long before a launch tries it again,
#: doubling while it stays down, up to the second number.
RETRY_UNREACHABLE_S = (1.0, 10.0)


class ClusterHealth:
    """What this worker process last saw of each cluster's API server; shared by threads.

    A cluster whose creates all went unanswered is *down*: fresh launches are placed
    elsewhere, and the ones pinned to it wait (handed back to the broker), until its retry
    time, when one launch may try it again.
    """

    def __init__(self, retry_s: tuple[float, float] = RETRY_UNREACHABLE_S) -> None:
        self.retry_s = retry_s
        self._down: dict[str, tuple[float, float]] = {}  # cluster -> (retry at, backoff)
        self._lock = threading.Lock()

    def down(self, cluster: str) -> None:
        with self._lock:
            _, backoff = self._down.get(cluster, (0.0, self.retry_s[0] / 2))
            backoff = min(self.retry_s[1], backoff * 2)
            self._down[cluster] = (time.monotonic() + backoff, backoff)
        CLUSTER_REACHABLE.labels(cluster=cluster).set(0)

    def up(self, cluster: str) -> None:
        if cluster in self._down:
            with self._lock:
                self._down.pop(cluster, None)
            CLUSTER_REACHABLE.labels(cluster=cluster).set(1)

    def is_down(self, cluster: str) -> bool:
        """Found unreachable (whether or not its retry time has come)."""
        return cluster in self._down

    def usable(self, cluster: str) -> bool:
        """Reachable as far as this process knows, or down but due for another try."""
        retry = self._down.get(cluster)
        return retry is None or time.monotonic() >= retry[0]

    def wait_s(self, clusters: Collection[str]) -> float:
        """Seconds until the first of ``clusters`` may be tried again (0: one may now)."""
        now = time.monotonic()
        waits = [max(0.0, self._down[c][0] - now) if c in self._down else 0.0
                 for c in clusters]
        return min(waits, default=0.0)


def choose(request: LaunchRequest, configured: Collection[str], health: ClusterHealth,
           exclude: Collection[str] = ()) -> str | None:
    """The cluster to place ``request`` on among its eligible ones that this worker has
    (``configured``), are usable and not in ``exclude``: the launch id's stable pick among
    them, so the pool spreads launches evenly. None when none is left."""
    usable = [c for c in request.clusters
              if c in configured and c not in exclude and health.usable(c)]
    if not usable:
        return None
    return usable[zlib.crc32(request.launch_id.encode()) % len(usable)]
