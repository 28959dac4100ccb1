"""The one judgement of what a pod means for its task: :func:`judge` gives a :class:`Verdict`.

The watcher judges each pod change as it happens (and :func:`judge_unseen_deletion` for a pod
that vanished while nobody watched); the executor judges a pod once, from a list, when it
reconciles after Redis was lost or adopts a dead executor's pods. Both call the functions
here, so a task gets the same state and the same :class:`~podfleet.contracts.failure.Failure`
whichever saw its pod. To map a new phase or pod reason, change this module alone. Pure
functions over pod JSON; no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from podfleet.contracts.failure import Failure
from podfleet.contracts.pod_status import container_statuses
from podfleet.contracts.states import TaskState

Json = Mapping[str, Any]

# Reasons podfleet writes itself (the others are copied from the pod's status).
POD_DELETED = "PodDeleted"            # a Running pod was deleted by someone else
POD_VANISHED = "PodVanished"          # a running pod disappeared while no watcher watched
DELETED_BEFORE_START = "PodDeletedBeforeStart"  # the pod never ran: launch the try again
FAILED_UNKNOWN = "Failed"             # phase Failed and no container or pod reason given

# The pod condition Kubernetes' own controllers add to a pod they are about to disrupt
# (preemption, eviction, drain, taint manager, kubelet): its reason says which.
DISRUPTION_CONDITION = "DisruptionTarget"
# A pod stopped by its own activeDeadlineSeconds: the task's limit, never a disruption.
DEADLINE_EXCEEDED = "DeadlineExceeded"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a pod implies for its task.

    ``state`` is LAUNCHED (the pod exists and has not run yet, or its phase is unclear: wait),
    RUNNING, SUCCESS, FAILED, or QUEUED (the pod is gone before it ever ran: launch the try
    again). ``failure`` says why for FAILED and QUEUED, and is None otherwise.
    """

    state: TaskState
    failure: Failure | None = None

    @property
    def requeue(self) -> bool:
        """The try must be launched again (its pod went away before it ran)."""
        return self.state is TaskState.QUEUED


def judge(pod: Json, fatal_reasons: frozenset[str] = frozenset(), *, gone: bool = False,
          ran: bool = False) -> Verdict:
    """The verdict on ``pod``'s task from one snapshot of the pod.

    ``fatal_reasons`` are the container waiting reasons that fail a Pending pod (the
    ``PODFLEET_FATAL_CONTAINER_REASONS`` setting). ``gone`` says the pod no longer exists
    (``pod`` is its last state, as a DELETED watch event carries it); ``ran`` that its task was
    already seen running, so a pod gone in a phase that does not say so still counts as run.

    Precedence: a finished phase (Succeeded, Failed) wins over the deletion that followed it;
    a gone pod that ran failed (:data:`POD_DELETED`), one that never ran is requeued; then
    Running; then a Pending (or phase-less) pod waiting for a fatal reason fails; anything
    else (Pending, Unknown) waits. A Failed or gone pod that carries a ``DisruptionTarget``
    condition (:func:`disruption_of`) fails with that condition's reason as its
    :attr:`Failure.disruption`, so the executor relaunches the try without spending a retry.
    """
    status = pod.get("status") or {}
    phase = status.get("phase")
    if phase == "Succeeded":
        return Verdict(TaskState.SUCCESS)
    disruption = disruption_of(pod)
    if phase == "Failed":
        failure = _failure_of_failed(pod)
        if disruption is not None:
            failure = _disrupted(failure, *disruption)
        return Verdict(TaskState.FAILED, failure)
    if gone:
        if phase == "Running" or ran:
            deleted = Failure(POD_DELETED, "pod deleted while running")
            if disruption is not None:
                deleted = _disrupted(deleted, *disruption)
            return Verdict(TaskState.FAILED, deleted)
        return Verdict(TaskState.QUEUED, Failure(
            DELETED_BEFORE_START, "pod deleted before it started; launch it again"))
    if phase == "Running":
        return Verdict(TaskState.RUNNING)
    if phase == "Pending" or not phase:
        stuck = _fatal_waiting(status, fatal_reasons)
        if stuck is not None:
            return Verdict(TaskState.FAILED, stuck)
    return Verdict(TaskState.LAUNCHED)


def judge_unseen_deletion(ran: bool) -> Verdict:
    """The verdict on a task whose pod was deleted while nobody watched (its last state is
    unknown): requeued if it never ran, failed (:data:`POD_VANISHED`) if it had."""
    if ran:
        return Verdict(TaskState.FAILED, Failure(
            POD_VANISHED, "pod deleted while running, and while no watcher watched: its "
            "outcome is unknown"))
    return Verdict(TaskState.QUEUED, Failure(
        DELETED_BEFORE_START, "pod deleted before it started; launch it again"))


def disruption_of(pod: Json) -> tuple[str, str] | None:
    """The (reason, message) of ``pod``'s ``DisruptionTarget`` condition when it is True, or
    None: the pod is not being disrupted, or it hit its own ``activeDeadlineSeconds``.

    Kubernetes names the reasons PreemptionByScheduler, EvictionByEvictionAPI (which
    ``kubectl drain`` uses), DeletionByTaintManager, TerminationByKubelet and
    DeletionByPodGC; any reason counts, an empty one as "DisruptionTarget".
    """
    status = pod.get("status") or {}
    if status.get("reason") == DEADLINE_EXCEEDED:
        return None
    conditions = status.get("conditions")
    for condition in conditions if isinstance(conditions, list) else ():
        if (isinstance(condition, Mapping) and condition.get("type") == DISRUPTION_CONDITION
                and str(condition.get("status")) == "True"):
            return (str(condition.get("reason") or DISRUPTION_CONDITION),
                    str(condition.get("message") or ""))
    return None


def _disrupted(failure: Failure, reason: str, message: str) -> Failure:
    """``failure`` re-told as the disruption it was: the condition's reason and message lead
    (what a container exited with follows from them)."""
    return Failure(reason, message or failure.message, failure.exit_code, failure.container,
                   failure.termination_message, disruption=reason)


def _failure_of_failed(pod: Json) -> Failure:
    """Why a Failed pod failed, most specific first.

    Pod-level reasons (Evicted, NodeLost, DeadlineExceeded, …) explain container exits that
    follow from them, so they win; then OOMKilled, a deletion of the running pod, and finally
    the first container that exited non-zero (reason ``Error``, or what the runtime wrote).
    """
    status = pod.get("status") or {}
    exited = _first_failed_container(status)
    code = exited[1].get("exitCode") if exited else None
    exit_code = code if isinstance(code, int) and not isinstance(code, bool) else None
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
        message = written or f"container {container} exited with code {exit_code}"
        return Failure(str(exited[1].get("reason") or "Error"), message, exit_code, container,
                       written)
    return Failure(FAILED_UNKNOWN, str(status.get("message") or "pod failed"))


def _first_failed_container(status: Json) -> tuple[Json, Json] | None:
    for cs in container_statuses(status):
        term = (cs.get("state") or {}).get("terminated")
        if term and (term.get("exitCode") != 0 or term.get("reason") == "OOMKilled"):
            return cs, term
    return None


def _fatal_waiting(status: Json, fatal_reasons: frozenset[str]) -> Failure | None:
    """The first container waiting for a reason that will not fix itself, or None."""
    for cs in container_statuses(status):
        waiting = (cs.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason")
        if reason and reason in fatal_reasons:
            return Failure(str(reason), str(waiting.get("message") or ""),
                           container=str(cs.get("name") or "") or None)
    return None
