"""The one judgement of what a pod means for its task (watcher and executor both use it)."""

from __future__ import annotations

from typing import Any

import pytest

from podfleet.contracts.failure import Failure
from podfleet.contracts.judgement import (
    DEADLINE_EXCEEDED,
    DELETED_BEFORE_START,
    DISRUPTION_CONDITION,
    FAILED_UNKNOWN,
    POD_DELETED,
    POD_VANISHED,
    Verdict,
    judge,
    judge_unseen_deletion,
)
from podfleet.contracts.states import TaskState

FATAL = frozenset({"ErrImagePull", "InvalidImageName"})


def pod(phase: str | None, *containers: dict[str, Any], init: tuple[dict[str, Any], ...] = (),
        reason: str | None = None, message: str | None = None,
        deleting: bool = False) -> dict[str, Any]:
    """A pod in ``phase`` whose containers are in the given states."""
    status: dict[str, Any] = {
        "containerStatuses": [{"name": f"c{i}", "state": s} for i, s in enumerate(containers)],
        "initContainerStatuses": [{"name": f"init{i}", "state": s} for i, s in enumerate(init)],
    }
    if phase is not None:
        status["phase"] = phase
    if reason is not None:
        status["reason"] = reason
    if message is not None:
        status["message"] = message
    meta: dict[str, Any] = {"name": "p", "namespace": "default", "uid": "u"}
    if deleting:
        meta["deletionTimestamp"] = "2024-05-01T10:01:00Z"
    return {"metadata": meta, "status": status}


def exited(code: int, reason: str = "Error", message: str | None = None) -> dict[str, Any]:
    term: dict[str, Any] = {"exitCode": code, "reason": reason}
    if message is not None:
        term["message"] = message
    return {"terminated": term}


def waiting(reason: str, message: str = "") -> dict[str, Any]:
    return {"waiting": {"reason": reason, "message": message}}


RUNNING = {"running": {"startedAt": "2024-05-01T10:00:03Z"}}


@pytest.mark.parametrize(("observed", "expected"), [
    (pod("Succeeded", exited(0, "Completed")), TaskState.SUCCESS),
    (pod("Running", RUNNING), TaskState.RUNNING),
    (pod("Pending", waiting("ContainerCreating")), TaskState.LAUNCHED),
    (pod(None), TaskState.LAUNCHED),
    (pod("Unknown"), TaskState.LAUNCHED),  # the node stopped reporting: wait for a clearer one
], ids=["succeeded", "running", "pending", "no-phase", "unknown"])
def test_a_phase_without_a_failure_maps_to_its_state(observed: dict[str, Any],
                                                     expected: TaskState) -> None:
    assert judge(observed, FATAL) == Verdict(expected)


@pytest.mark.parametrize(("observed", "failure"), [
    (pod("Failed", exited(3)),
     Failure("Error", "container c0 exited with code 3", 3, "c0")),
    (pod("Failed", exited(3, message="disk full\n")),
     Failure("Error", "disk full\n", 3, "c0", "disk full\n")),
    (pod("Failed", exited(137, "OOMKilled")),
     Failure("OOMKilled", "container c0 ran out of memory", 137, "c0")),
    (pod("Failed", exited(0, "Completed"), exited(2, "ContainerCannotRun")),
     Failure("ContainerCannotRun", "container c1 exited with code 2", 2, "c1")),
    (pod("Failed", exited(1), init=(exited(4),)),
     Failure("Error", "container init0 exited with code 4", 4, "init0")),
    (pod("Failed", message="the kubelet gave up"), Failure(FAILED_UNKNOWN, "the kubelet gave up")),
    (pod("Failed"), Failure(FAILED_UNKNOWN, "pod failed")),
], ids=["exit-code", "termination-message", "oom", "first-non-zero-container",
        "init-container-first", "no-reason-pod-message", "no-reason-at-all"])
def test_a_failed_pod_fails_with_what_its_containers_say(observed: dict[str, Any],
                                                         failure: Failure) -> None:
    assert judge(observed, FATAL) == Verdict(TaskState.FAILED, failure)


@pytest.mark.parametrize("reason", ["Evicted", "NodeLost", "DeadlineExceeded"])
@pytest.mark.parametrize("container", [exited(137), exited(137, "OOMKilled")],
                         ids=["error", "oom"])
def test_a_pod_level_reason_wins_over_the_container_exits_it_caused(
        reason: str, container: dict[str, Any]) -> None:
    verdict = judge(pod("Failed", container, reason=reason, message="the node went away",
                        deleting=True))
    assert verdict == Verdict(TaskState.FAILED, Failure(reason, "the node went away", 137, "c0"))


def test_oomkilled_wins_over_the_pods_deletion() -> None:
    verdict = judge(pod("Failed", exited(137, "OOMKilled"), deleting=True))
    assert verdict.failure is not None and verdict.failure.reason == "OOMKilled"


def test_a_pod_failed_by_its_deletion_fails_as_deleted_with_the_exit_code() -> None:
    # Its container exited 143 on the SIGTERM the deletion sent
    verdict = judge(pod("Failed", exited(143), deleting=True))
    assert verdict == Verdict(TaskState.FAILED,
                              Failure(POD_DELETED, "pod deleted while running", 143, "c0"))


@pytest.mark.parametrize("phase", ["Pending", None])
def test_a_fatal_waiting_reason_fails_a_pod_that_has_not_started(phase: str | None) -> None:
    verdict = judge(pod(phase, waiting("ErrImagePull", "cannot pull")), FATAL)
    assert verdict == Verdict(TaskState.FAILED, Failure("ErrImagePull", "cannot pull",
                                                        container="c0"))


def test_which_waiting_reasons_are_fatal_is_the_callers_choice() -> None:
    assert judge(pod("Pending", waiting("ErrImagePull")), frozenset()).state is TaskState.LAUNCHED
    assert judge(pod("Pending", waiting("Custom")), frozenset({"Custom"})).state \
        is TaskState.FAILED


@pytest.mark.parametrize(("phase", "ran", "expected"), [
    ("Running", False, Verdict(TaskState.FAILED,
                               Failure(POD_DELETED, "pod deleted while running"))),
    ("Pending", True, Verdict(TaskState.FAILED,
                              Failure(POD_DELETED, "pod deleted while running"))),
    ("Pending", False, Verdict(TaskState.QUEUED, Failure(
        DELETED_BEFORE_START, "pod deleted before it started; launch it again"))),
], ids=["running", "pending-but-seen-running", "never-ran"])
def test_a_gone_pod_failed_if_it_ran_and_is_requeued_if_not(phase: str, ran: bool,
                                                           expected: Verdict) -> None:
    assert judge(pod(phase, deleting=True), FATAL, gone=True, ran=ran) == expected


def test_a_requeue_is_the_only_verdict_that_asks_for_a_new_launch() -> None:
    assert judge(pod("Pending"), gone=True).requeue
    assert not judge(pod("Running"), gone=True).requeue


def test_a_gone_pod_that_finished_keeps_its_outcome() -> None:
    assert judge(pod("Succeeded", exited(0, "Completed")), gone=True) == \
        Verdict(TaskState.SUCCESS)


def test_a_gone_pod_waiting_for_a_fatal_reason_is_requeued() -> None:
    verdict = judge(pod("Pending", waiting("ErrImagePull")), FATAL, gone=True)
    assert verdict.requeue


def test_a_deletion_nobody_saw_fails_a_task_that_ran() -> None:
    verdict = judge_unseen_deletion(ran=True)
    assert verdict.state is TaskState.FAILED
    assert verdict.failure is not None and verdict.failure.reason == POD_VANISHED


def test_a_deletion_nobody_saw_requeues_a_task_that_never_ran() -> None:
    verdict = judge_unseen_deletion(ran=False)
    assert verdict.requeue
    assert verdict.failure is not None and verdict.failure.reason == DELETED_BEFORE_START


DISRUPTION_REASONS = ["PreemptionByScheduler", "EvictionByEvictionAPI",
                      "DeletionByTaintManager", "TerminationByKubelet"]


def disrupted(observed: dict[str, Any], reason: str, status: str = "True") -> dict[str, Any]:
    """``observed`` with a DisruptionTarget condition of ``reason`` added."""
    observed["status"]["conditions"] = [
        {"type": "Ready", "status": "False"},
        {"type": DISRUPTION_CONDITION, "status": status, "reason": reason,
         "message": f"{reason} says so"}]
    return observed


@pytest.mark.parametrize("reason", DISRUPTION_REASONS)
def test_a_running_pod_deleted_with_a_disruption_condition_is_a_disruption(reason: str) -> None:
    verdict = judge(disrupted(pod("Running", RUNNING), reason), gone=True)
    assert verdict == Verdict(TaskState.FAILED, Failure(
        reason, f"{reason} says so", disruption=reason))


@pytest.mark.parametrize("reason", DISRUPTION_REASONS)
def test_a_failed_pod_with_a_disruption_condition_is_a_disruption_with_its_exit_code(
        reason: str) -> None:
    verdict = judge(disrupted(pod("Failed", exited(143), deleting=True), reason))
    assert verdict == Verdict(TaskState.FAILED, Failure(
        reason, f"{reason} says so", 143, "c0", disruption=reason))


def test_a_disruption_condition_that_is_not_true_is_no_disruption() -> None:
    verdict = judge(disrupted(pod("Running", RUNNING), "EvictionByEvictionAPI", "False"),
                    gone=True)
    assert verdict == Verdict(TaskState.FAILED, Failure(POD_DELETED, "pod deleted while running"))


def test_a_pod_past_its_active_deadline_fails_with_deadline_exceeded_not_a_disruption() -> None:
    observed = disrupted(pod("Failed", exited(137), reason=DEADLINE_EXCEEDED,
                             message="Pod was active on the node longer than the specified "
                                     "deadline"), "TerminationByKubelet")
    verdict = judge(observed)
    assert verdict.failure is not None
    assert (verdict.state, verdict.failure.reason, verdict.failure.disruption) == (
        TaskState.FAILED, DEADLINE_EXCEEDED, None)


def test_a_disrupted_pod_that_succeeded_anyway_succeeds() -> None:
    observed = disrupted(pod("Succeeded", exited(0, "Completed")), "PreemptionByScheduler")
    assert judge(observed, gone=True) == Verdict(TaskState.SUCCESS)


def test_a_running_pod_marked_for_disruption_is_still_running_until_it_ends() -> None:
    observed = disrupted(pod("Running", RUNNING), "EvictionByEvictionAPI")
    assert judge(observed) == Verdict(TaskState.RUNNING)
