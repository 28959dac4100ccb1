"""One cluster's launch machinery in a worker process: its clients, admission, quota gate,
outcomes and slow start, all speaking to that cluster and keyed by it in Redis."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from podfleet.contracts.clusters import ClusterSpec
from podfleet.contracts.redis_keys import RedisKeys
from podfleet.kube.aio import AsyncKubeClient, EventLoopThread
from podfleet.kube.client import KubeClient
from podfleet.settings import Settings
from podfleet.workers.admission import Admission
from podfleet.workers.launch_records import LaunchRecords
from podfleet.workers.launcher.outcome import Outcomes
from podfleet.workers.launcher.placement import ClusterHealth
from podfleet.workers.launcher.slow_start import SlowStart
from podfleet.workers.quota import QuotaGate


@dataclass(slots=True)
class ClusterLane:
    """Everything a launcher needs to create pods on one cluster."""

    spec: ClusterSpec
    kube: KubeClient
    aio: AsyncKubeClient
    admission: Admission
    quota: QuotaGate
    outcomes: Outcomes
    slow_start: SlowStart

    @property
    def name(self) -> str:
        return self.spec.name

    @classmethod
    def build(cls, spec: ClusterSpec, kube: KubeClient, *, settings: Settings,
              redis_client: Any, records: LaunchRecords, loop: EventLoopThread,
              health: ClusterHealth, clock: Callable[[], float],
              concurrency: int) -> ClusterLane:
        """The lane of ``spec`` over ``kube`` (its client), sharing the process's event loop,
        launch records and view of clusters' health."""
        keys = RedisKeys(settings.redis.prefix).for_cluster(spec.name)
        # Rare calls (the GET that looks for an existing pod) stay on the sync client; the
        # creates go through one aiohttp session on the process's own event loop.
        aio = AsyncKubeClient.from_client(kube, concurrency=concurrency)
        # Every create takes its permit here: pending cap, fair share, ceilings, rate.
        admission = Admission(settings, redis_client, cluster=spec)
        quota = QuotaGate(kube, redis_client, keys,
                          poll_seconds=settings.launch.quota_poll_seconds)
        outcomes = Outcomes(settings, kube, quota, cluster=spec.name)
        slow_start = SlowStart(aio, loop, records, outcomes, admission, clock=clock,
                               health=health)
        return cls(spec, kube, aio, admission, quota, outcomes, slow_start)
