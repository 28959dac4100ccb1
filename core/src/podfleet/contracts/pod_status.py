"""Facts read from a pod's status: timestamps, its containers, why it is still Pending.

What those facts mean for the pod's task (its state, why it failed) is judged in one place,
:mod:`podfleet.contracts.judgement`. Pure functions over pod JSON; no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

Json = Mapping[str, Any]

# The waiting reasons a kubelet reports for a container that has not started (its image and
# container-runtime errors, plus the two transient ones); PODFLEET_FATAL_CONTAINER_REASONS
# must name only these.
KUBELET_WAITING_REASONS = frozenset({
    "ContainerCreating", "PodInitializing", "ErrImagePull", "ImagePullBackOff",
    "ErrImageNeverPull", "InvalidImageName", "RegistryUnavailable", "ErrImageInspect",
    "SignatureValidationFailed", "CreateContainerConfigError", "CreateContainerError",
    "PreStartHookError", "PostStartHookError", "RunContainerError", "CrashLoopBackOff",
    "PreCreateHookError",
})


def parse_time(stamp: Any) -> float | None:
    """Unix seconds of a Kubernetes RFC 3339 timestamp (``2024-05-01T10:00:00Z``), or None."""
    if not isinstance(stamp, str) or not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return None


def container_statuses(status: Json) -> list[Json]:
    """The statuses of a pod's init containers, then of its containers, in that order."""
    return [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]


def started_at(pod: Json) -> float | None:
    """When the pod's first container started running (running or terminated state)."""
    status = pod.get("status") or {}
    times = []
    for cs in status.get("containerStatuses") or []:
        state = cs.get("state") or {}
        for phase in ("running", "terminated"):
            when = parse_time((state.get(phase) or {}).get("startedAt"))
            if when is not None:
                times.append(when)
    return min(times) if times else None


def start_latency(pod: Json) -> float | None:
    """Seconds from the pod's creation to its first container running (second precision)."""
    created = parse_time((pod.get("metadata") or {}).get("creationTimestamp"))
    started = started_at(pod)
    if created is None or started is None:
        return None
    return max(0.0, started - created)


def finished_at(pod: Json) -> float | None:
    """When the pod's last container terminated, or None."""
    status = pod.get("status") or {}
    times = []
    for cs in status.get("containerStatuses") or []:
        when = parse_time(((cs.get("state") or {}).get("terminated") or {}).get("finishedAt"))
        if when is not None:
            times.append(when)
    return max(times) if times else None


def pending_reason(pod: Json | None) -> str:
    """Why a pod is still Pending, as a task's failure reason: its first waiting container's
    reason and message, else the scheduler's (``Unschedulable: 0/3 nodes …``)."""
    if pod is None:
        return "its pod no longer exists"
    status = pod.get("status") or {}
    for cs in container_statuses(status):
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason"):
            message = waiting.get("message")
            return f"{waiting['reason']}: {message}" if message else str(waiting["reason"])
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            reason = condition.get("reason") or "Unschedulable"
            message = condition.get("message")
            return f"{reason}: {message}" if message else str(reason)
    return f"phase {status.get('phase') or 'unknown'}"
