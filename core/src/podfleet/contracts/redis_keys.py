"""Every Redis key podfleet owns, named in one place.

All keys share one prefix (``PODFLEET_REDIS_PREFIX``, default ``podfleet``) so that several
podfleet installations can share a Redis, and so an operator can find them with one SCAN.
dramatiq's own queue keys live under dramatiq's namespace and are not listed here.

Keys about one Kubernetes cluster (its watcher's lease, fence, resourceVersions and pod
records, its admission views, rate buckets and quota waiting lists) are per cluster:
``RedisKeys(prefix).for_cluster(name)`` names them under ``<prefix>:cluster:<name>:``, while
the cluster named ``default`` keeps today's names (``<prefix>:watcher:lease``, …), so a
running fleet upgrades in place. Keys about tasks and executors (event streams, launch
records, log-archive failures, consumers) are the fleet's, the same for every cluster.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from podfleet.contracts.clusters import DEFAULT_CLUSTER

EVENTS_GROUP = "executor"  # the consumer group an executor reads its event stream with


@dataclass(frozen=True, slots=True)
class RedisKeys:
    prefix: str = "podfleet"
    #: The cluster whose keys the per-cluster names below are (see the module's doc).
    cluster: str = DEFAULT_CLUSTER

    def for_cluster(self, cluster: str) -> RedisKeys:
        """The same keys, with the per-cluster ones naming ``cluster``'s."""
        return dataclasses.replace(self, cluster=cluster)

    @property
    def cluster_prefix(self) -> str:
        """The prefix of this cluster's own keys: ``prefix`` for ``default`` (today's names),
        else ``<prefix>:cluster:<name>``."""
        if self.cluster == DEFAULT_CLUSTER:
            return self.prefix
        return f"{self.prefix}:cluster:{self.cluster}"

    def events(self, executor_id: str) -> str:
        """Stream (XADD/XREADGROUP): task events for one executor."""
        return f"{self.prefix}:events:{executor_id}"

    def launch_record(self, launch_id: str) -> str:
        """String with an expiry: how far a launch got (claimed, created:<uid>, failed), so
        a redelivered or replayed launch message creates its pod at most once."""
        return f"{self.prefix}:launched:{launch_id}"

    def quota_waiting(self, namespace: str) -> str:
        """Sorted set: the launches of ``namespace`` parked on a full ResourceQuota, scored by
        minus their priority (members start with their queue time: oldest first among equals),
        so the gate lets them in highest priority first."""
        return f"{self.cluster_prefix}:quota:waiting:{namespace}"

    def rate_limit(self, name: str) -> str:
        """String: the GCRA theoretical arrival time of one of this cluster's rate limits, in µs
        (a bucket shared by every worker that creates pods there)."""
        return f"{self.cluster_prefix}:ratelimit:{name}"

    def log_archive_failure(self, launch_id: str) -> str:
        """String with an expiry: when and why archiving this launch's pod log failed."""
        return f"{self.prefix}:logs:archive-failed:{launch_id}"

    def consumers(self, dramatiq_queue: str) -> str:
        """Sorted set: worker process -> the last time (Redis' clock) it said it consumes
        this dramatiq queue; members older than a few heartbeats are gone."""
        return f"{self.prefix}:consumers:{dramatiq_queue}"

    def admission_pending(self, namespace: str) -> str:
        """Sorted set: podfleet pods of ``namespace`` that exist (or are being created) but
        are not yet Running; score = when an unconfirmed reservation expires (ms, Redis'
        clock), ``+inf`` once the watcher has seen the pod (podfleet.workers.admission)."""
        return f"{self.admission_pending_prefix}{namespace}"

    @property
    def admission_pending_prefix(self) -> str:
        """The prefix of every :meth:`admission_pending` key (the scripts build them)."""
        return f"{self.cluster_prefix}:admission:pending:"

    def admission_active(self, queue: str, namespace: str) -> str:
        """Sorted set: pods of task queue ``queue`` in ``namespace`` that exist (or are being
        created) and have not finished, scored as :meth:`admission_pending` (pools:
        PODFLEET_QUEUE_MAX_RUNNING)."""
        return f"{self.admission_prefix}active:{queue}:{namespace}"

    @property
    def admission_prefix(self) -> str:
        """The prefix of every admission key (the watcher's fenced script builds them)."""
        return f"{self.cluster_prefix}:admission:"

    @property
    def admission_namespaces(self) -> str:
        """Set: every namespace with an :meth:`admission_pending` view (for the total)."""
        return f"{self.cluster_prefix}:admission:namespaces"

    @property
    def admission_demand(self) -> str:
        """Sorted set: task queue -> when it last asked for a launch permit (µs, Redis'
        clock); a queue that asked within the last second shares the launch rate."""
        return f"{self.cluster_prefix}:admission:demand"

    def admission_share(self, queue: str) -> str:
        """String: the GCRA theoretical arrival time (µs) of one task queue's fair share."""
        return f"{self.cluster_prefix}:admission:share:{queue}"

    @property
    def admission_scratch(self) -> str:
        """Sorted set: the permit script's scratch for counting a queue's pending pods,
        deleted before the script returns."""
        return f"{self.admission_prefix}scratch"

    @property
    def admission_at_cap(self) -> str:
        """Sorted set: task queue -> when (µs, Redis' clock) a pending cap last refused it or
        held it to less than it asked: a queue under its share of the cap waiting there is
        owed the slots that free."""
        return f"{self.admission_prefix}at_cap"

    @property
    def admission_waiting(self) -> str:
        """Hash: task queue -> why its last permit was refused and when (``<budget> <ms>``),
        deleted when it is granted one (``podfleet status``, metrics)."""
        return f"{self.cluster_prefix}:admission:waiting"

    @property
    def watcher_lease(self) -> str:
        """Hash: holder, token and expiry of the singleton watcher's lease."""
        return f"{self.cluster_prefix}:watcher:lease"

    @property
    def watcher_fence(self) -> str:
        """String counter: the last fencing token handed out; each new lease takes the next."""
        return f"{self.cluster_prefix}:watcher:fence"

    def watcher_resource_version(self, scope: str) -> str:
        """String: the last resourceVersion the watcher published events up to, per scope."""
        return f"{self.cluster_prefix}:watcher:rv:{scope}"

    def watcher_pod_records(self, scope: str) -> str:
        """Hash: pod uid -> what the watcher last published for that pod, per scope."""
        return f"{self.cluster_prefix}:watcher:pods:{scope}"

    @property
    def watcher_kick(self) -> str:
        """String with an expiry: set while a "start a watcher" message is in flight, so the
        whole fleet sends at most one per lease period."""
        return f"{self.cluster_prefix}:watcher:kick"
