"""The settings of a test fleet whose launches go out at once: no launch rate, no pending cap
(the launcher tests run no watcher, so nothing would see pods start and free the cap's room),
retries within half a second and a Kubernetes client that gives up after 2 s."""

from __future__ import annotations

PROMPT_LAUNCHES = {
    "PODFLEET_LAUNCH_RATE": "0",
    "PODFLEET_MAX_PENDING_PODS": "0",
    "PODFLEET_LAUNCH_BACKOFF_SECONDS": "0.05",
    "PODFLEET_LAUNCH_BACKOFF_MAX_SECONDS": "0.5",
    "PODFLEET_KUBE_TIMEOUT_SECONDS": "2",
    "PODFLEET_BROKER_HEARTBEAT_TIMEOUT_SECONDS": "3",
}
