"""Admission's state, read from Redis when Prometheus scrapes: pods not yet Running per
cluster and namespace against their cap and per task queue (the caps are split by weight),
and each task queue's weight share among the queues with work (on the first configured
cluster).

Like the broker's queues, these are fleet-wide facts no one process observes: the launchers
reserve and the watcher confirms in Redis (``podfleet.workers.admission``), so every worker
host reads and reports the same values — aggregate them with ``max``, never ``sum``. The
launches each queue actually got are ``podfleet_rate_limit_granted_total{queue}`` (the
recording rule ``podfleet:queue_share:ratio_rate1m`` turns them into shares).

If Redis cannot be read the scrape leaves these series out (``podfleet_broker_up`` says why).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

import redis
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from podfleet.contracts.queues import DEFAULT_QUEUE
from podfleet.contracts.redis_keys import RedisKeys
from podfleet.monitoring import metrics
from podfleet.settings import Settings

log = logging.getLogger(__name__)

#: A queue that asked for a permit within this long has work (as admission counts it).
DEMAND_WINDOW_S = 1.0


class AdmissionCollector(Collector):
    """Collect the pending view and the queues' weight shares for one podfleet installation."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self._client = client
        keys = RedisKeys(settings.redis.prefix)
        #: Each cluster's keys and its cap on pods not yet Running.
        self._clusters = [(keys.for_cluster(spec.name), spec.max_pending_pods)
                          for spec in settings.clusters.configured]
        launch = settings.launch
        self._caps = launch.namespace_max_pending_pods
        self._weights = launch.queue_weights
        self._queues = [DEFAULT_QUEUE, *launch.queue_rates]

    def describe(self) -> Iterable[Metric]:
        return ()

    def collect(self) -> Iterable[Metric]:
        try:
            read = [(keys.cluster, total_cap, self._read(keys))
                    for keys, total_cap in self._clusters]
        except redis.RedisError as exc:
            log.warning("admission metrics: cannot read Redis: %s", exc)
            return []
        pending = GaugeMetricFamily(
            metrics.PENDING_PODS_NAME,
            "podfleet pods of a cluster's namespace that exist (or are being created) but are "
            "not yet Running, as admission counts them.", labels=["cluster", "namespace"])
        cap = GaugeMetricFamily(
            metrics.PENDING_CAP_NAME,
            "The cap on a cluster's namespace's pods not yet Running (0 = none); "
            "namespace=\"*\" is the cap of all its namespaces together.",
            labels=["cluster", "namespace"])
        for cluster, total_cap, (pending_by_ns, _, _) in read:
            for namespace in sorted(set(pending_by_ns) | set(self._caps)):
                pending.add_metric([cluster, namespace], pending_by_ns.get(namespace, 0))
                cap.add_metric([cluster, namespace], self._caps.get(namespace, total_cap))
            pending.add_metric([cluster, "*"], sum(pending_by_ns.values()))
            cap.add_metric([cluster, "*"], total_cap)
        active = read[0][2][1]
        share = GaugeMetricFamily(
            metrics.QUEUE_WEIGHT_SHARE_NAME,
            "A task queue's weight over the weights of the queues with work now: the share "
            "of the launch rate and of the pending caps it is due (0 while it has no work).",
            labels=["queue"])
        weight_sum = sum(self._weights.get(q, 1.0) for q in active)
        for queue in self._queues:
            due = self._weights.get(queue, 1.0) / weight_sum if queue in active and \
                weight_sum > 0 else 0.0
            share.add_metric([queue], due)
        by_queue = GaugeMetricFamily(
            metrics.QUEUE_PENDING_PODS_NAME,
            "A task queue's podfleet pods that exist (or are being created) but are not yet "
            "Running, over every cluster and namespace: its part of the pending caps, which "
            "queues with work split by weight (compare with podfleet_queue_weight_share).",
            labels=["queue"])
        for queue in self._queues:
            held = sum(counts.get(queue, 0) for _, _, (_, _, counts) in read)
            by_queue.add_metric([queue], held)
        return [pending, cap, share, by_queue]

    def _read(self, keys: RedisKeys) -> tuple[dict[str, int], set[str], dict[str, int]]:
        now = time.time()
        now_ms = int(now * 1000)
        namespaces = sorted(_text(n) for n in self._client.smembers(
            keys.admission_namespaces))
        pipe: Any = self._client.pipeline(transaction=False)
        for namespace in namespaces:
            pipe.zrangebyscore(keys.admission_pending(namespace), now_ms, "+inf")
        pipe.zrangebyscore(keys.admission_demand,
                           int((now - DEMAND_WINDOW_S) * 1_000_000), "+inf")
        values = pipe.execute()
        members = dict(zip(namespaces, values[:-1], strict=True))
        # A pod's queue is the pool view that holds it (the watcher keeps one per queue).
        asked: list[str] = []
        for namespace, names in members.items():
            for queue in self._queues:
                key = keys.admission_active(queue, namespace)
                for name in names:
                    pipe.zscore(key, name)
                    asked.append(queue)
        by_queue: dict[str, int] = {}
        for queue, score in zip(asked, pipe.execute() if asked else [], strict=True):
            if score is not None and score >= now_ms:
                by_queue[queue] = by_queue.get(queue, 0) + 1
        pending = {ns: len(names) for ns, names in members.items()}
        return pending, {_text(q) for q in values[-1]}, by_queue


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)
