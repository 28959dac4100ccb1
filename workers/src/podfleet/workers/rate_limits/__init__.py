"""A cluster-wide limit on pod creations per second, shared by every launcher through Redis.

The Python client has no client-side limiter (client-go's is per process, 5 QPS), and a
launcher pool of many processes on many machines must together stay under what the API
server, its quotas and the cluster's schedulers accept. The limit is a GCRA (generic cell rate
algorithm, equivalent to a token bucket of ``burst`` tokens refilled at ``rate`` per second)
whose whole state is one Redis integer updated atomically by one Lua script
(``gcra.lua``, which documents its key). Callers *reserve* permits and sleep until they
conform, so no process polls and no 1-second window sees more than ``rate + burst`` creates.
"""

from __future__ import annotations

from podfleet.workers.rate_limits.limiter import ClusterRateLimiter, Grant

__all__ = ["ClusterRateLimiter", "Grant"]
