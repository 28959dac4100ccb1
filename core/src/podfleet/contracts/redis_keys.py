"""Every Redis key podfleet owns, named in one place.

All keys share one prefix (``PODFLEET_REDIS_PREFIX``, default ``podfleet``) so that several
podfleet installations can share a Redis, and so an operator can find them with one SCAN.
dramatiq's own queue keys live under dramatiq's namespace and are not listed here.
"""

from __future__ import annotations

from dataclasses import dataclass

EVENTS_GROUP = "executor"  # the consumer group an executor reads its event stream with


@dataclass(frozen=True, slots=True)
class RedisKeys:
    prefix: str = "podfleet"

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
        return f"{self.prefix}:quota:waiting:{namespace}"

    def rate_limit(self, name: str) -> str:
        """String: the GCRA theoretical arrival time of a cluster-wide rate limit, in µs."""
        return f"{self.prefix}:ratelimit:{name}"

    def log_archive_failure(self, launch_id: str) -> str:
        """String with an expiry: when and why archiving this launch's pod log failed."""
        return f"{self.prefix}:logs:archive-failed:{launch_id}"

    def consumers(self, dramatiq_queue: str) -> str:
        """Sorted set: worker process -> the last time (Redis' clock) it said it consumes
        this dramatiq queue; members older than a few heartbeats are gone."""
        return f"{self.prefix}:consumers:{dramatiq_queue}"

    @property
    def watcher_lease(self) -> str:
        """Hash: holder, token and expiry of the singleton watcher's lease."""
        return f"{self.prefix}:watcher:lease"

    @property
    def watcher_fence(self) -> str:
        """String counter: the last fencing token handed out; each new lease takes the next."""
        return f"{self.prefix}:watcher:fence"

    def watcher_resource_version(self, scope: str) -> str:
        """String: the last resourceVersion the watcher published events up to, per scope."""
        return f"{self.prefix}:watcher:rv:{scope}"

    def watcher_pod_records(self, scope: str) -> str:
        """Hash: pod uid -> what the watcher last published for that pod, per scope."""
        return f"{self.prefix}:watcher:pods:{scope}"

    @property
    def watcher_kick(self) -> str:
        """String with an expiry: set while a "start a watcher" message is in flight, so the
        whole fleet sends at most one per lease period."""
        return f"{self.prefix}:watcher:kick"
