"""A worker child: record known amounts into podfleet's metrics, then wait or exit.

Usage: record_metrics.py NAMESPACE CREATED LEASE_HELD HOLD. PROMETHEUS_MULTIPROC_DIR comes from
the environment, as a real child inherits it from the ``podfleet worker`` parent. Prints
``ready`` once everything is recorded; with HOLD=1 it then waits for standard input to close.
"""

from __future__ import annotations

import sys

from podfleet.monitoring import metrics

namespace, created, lease, hold = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
metrics.PODS_CREATED.labels("default", namespace, "created").inc(created)
for i in range(created):
    metrics.LAUNCH_LATENCY.labels(namespace).observe(0.1 * (i + 1))
metrics.WATCHER_LEASE_HELD.labels(cluster="default").set(int(lease))
print("ready", flush=True)
if hold == "1":
    sys.stdin.read()
