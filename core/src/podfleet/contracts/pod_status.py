"""What a pod's status says about its task: failure reasons, timestamps, snapshot state.

Shared by the watcher (which maps each pod change to a task event as it happens) and the
executor (which judges a pod once, from a list, when it reconciles after Redis was lost or
adopts a dead executor's pods), so both give a task the same state and the same reason.
Pure functions over pod JSON; no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from podfleet.contracts.states import TaskState

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

# Reasons podfleet writes itself (the others are copied from the pod's status).
POD_DELETED = "PodDeleted"            # a Running pod was deleted by someone else
POD_VANISHED = "PodVanished"          # a running pod disappeared while no watcher watched
DELETED_BEFORE_START = "PodDeletedBeforeStart"  # REQUEUE: the pod never ran
FAILED_UNKNOWN = "Failed"             # phase Failed and no container or pod reason given


def parse_time(stamp: Any) -> float | None:
    """Unix seconds of a Kubernetes RFC 3339 timestamp (``2024-05-01T10:00:00Z``), or None."""
    if not isinstance(stamp, str) or not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return None


def _container_statuses(status: Json) -> list[Json]:
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


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a pod failed: a short reason (grouping key), a human message, the exit code, and
    the container's own termination message (``state.terminated.message``) if it left one."""

    reason: str
    message: str = ""
    exit_code: int | None = None
    container: str | None = None
    termination_message: str = ""

    @property
    def summary(self) -> str:
        """What a person reads in a task's failure reason: ``OOMKilled (exit code 137)``,
        ``Error (exit code 3): disk full``."""
        return describe_failure(self.reason, self.exit_code, self.termination_message)


def describe_failure(reason: str, exit_code: Any = None, termination_message: Any = None) -> str:
    """``reason`` with the exit code appended when there is one, then the container's
    termination message (what it wrote to terminationMessagePath, or its log's tail)."""
    text = reason
    if isinstance(exit_code, int) and not isinstance(exit_code, bool):
        text = f"{reason} (exit code {exit_code})"
    if isinstance(termination_message, str) and termination_message.strip():
        text = f"{text}: {termination_message.strip()}"
    return text


def failure_of(pod: Json) -> Failure:
    """The reason a Failed pod failed, most specific first.

    Pod-level reasons (Evicted, NodeLost, DeadlineExceeded, …) explain container exits that
    follow from them, so they win; then OOMKilled, a deletion of the running pod, and finally
    the first container that exited non-zero (reason ``Error``, or what the runtime wrote).
    """
    status = pod.get("status") or {}
    exited = _first_failed_container(status)
    code = exited[1].get("exitCode") if exited else None
    exit_code = code if isinstance(code, int) else None
    container = str(exited[0].get("name")) if exited else None
    pod_reason = status.get("reason")
    if pod_reason:
        return Failure(str(pod_reason), str(status.get("message") or ""), exit_code, container)
    written = str(exited[1].get("message") or "") if exited else ""
    if exited and exited[1].get("reason") == "OOMKilled":
        return Failure("OOMKilled", written or f"container {container} ran out of memory",
                       exit_code, container, written)
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return Failure(POD_DELETED, "pod deleted while running", exit_code, container)
    if exited:
        term = exited[1]
        message = written or f"container {container} exited with code {exit_code}"
        return Failure(str(term.get("reason") or "Error"), message, exit_code, container,
                       written)
    return Failure(FAILED_UNKNOWN, str(status.get("message") or "pod failed"), None, None)


def _first_failed_container(status: Json) -> tuple[Json, Json] | None:
    for cs in _container_statuses(status):
        term = (cs.get("state") or {}).get("terminated")
        if term and (term.get("exitCode") != 0 or term.get("reason") == "OOMKilled"):
            return cs, term
    return None


def pending_failure(pod: Json, fatal_reasons: frozenset[str]) -> Failure | None:
    """A Pending pod whose container waits for a reason that will not fix itself, or None."""
    status = pod.get("status") or {}
    for cs in _container_statuses(status):
        waiting = (cs.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason")
        if reason and reason in fatal_reasons:
            return Failure(str(reason), str(waiting.get("message") or ""), None,
                           str(cs.get("name") or ""))
    return None


def pending_reason(pod: Json | None) -> str:
    """Why a pod is still Pending, as a task's failure reason: its first waiting container's
    reason and message, else the scheduler's (``Unschedulable: 0/3 nodes …``)."""
    if pod is None:
        return "its pod no longer exists"
    status = pod.get("status") or {}
    for cs in _container_statuses(status):
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


def pod_task_state(pod: Json, fatal_reasons: frozenset[str] = frozenset()
                   ) -> tuple[TaskState, str | None]:
    """(state, reason) of the task a pod runs, judged from one snapshot of the pod."""
    status = pod.get("status") or {}
    phase = status.get("phase")
    if phase == "Succeeded":
        return TaskState.SUCCESS, None
    if phase == "Failed":
        return TaskState.FAILED, failure_of(pod).summary
    if phase == "Running":
        return TaskState.RUNNING, None
    stuck = pending_failure(pod, fatal_reasons) if phase == "Pending" else None
    if stuck is not None:
        return TaskState.FAILED, stuck.reason
    return TaskState.LAUNCHED, None
