"""What the watcher publishes about a pod, given what it published before.

What a pod means for its task is ``contracts.judgement``'s (tests/contracts/test_judgement.py);
these pin how its verdict becomes task events and per-pod records.
"""

from __future__ import annotations

from typing import Any

import pytest
from watcher_support import (
    FATAL,
    new_key,
    running,
    task_pod,
    terminated,
    waiting,
    with_status,
)

from podfleet.contracts.events import EventKind, EventSource
from podfleet.contracts.failure import Failure
from podfleet.contracts.judgement import DELETED_BEFORE_START, POD_DELETED, POD_VANISHED, judge
from podfleet.contracts.states import TaskState
from podfleet.workers.watcher import phases
from podfleet.workers.watcher.phases import Published, Stage


def observe(pod: dict[str, Any], prior: Published | None = None,
            deleted: bool = False) -> phases.Transition:
    transition = phases.observe(pod, prior, deleted=deleted, fatal_reasons=FATAL, now=1.0)
    assert transition is not None
    return transition


@pytest.fixture
def pod() -> dict[str, Any]:
    return task_pod(new_key(), "launch-1")


def test_running_pod_publishes_running_with_node_and_start_latency(pod: dict[str, Any]) -> None:
    # Given a pod created at 10:00:00 whose container started at 10:00:03
    # When the watcher first sees it Running
    t = observe(with_status(pod, "Running", containers=running()))
    # Then RUNNING is published, routed to its executor, and the pod's record says so
    assert t.event is not None
    assert t.event.state is TaskState.RUNNING and t.event.kind is EventKind.STATE
    assert t.event.source is EventSource.WATCHER
    assert (t.event.executor_id, t.event.launch_id) == ("exec-a", "launch-1")
    assert t.event.detail == {"node": "node-1", "start_latency_s": 3.0}
    assert t.after is not None and t.after.stage is Stage.RUNNING


def test_running_pod_seen_again_publishes_nothing(pod: dict[str, Any]) -> None:
    first = observe(with_status(pod, "Running", containers=running()))
    again = observe(with_status(pod, "Running", containers=running()), first.after)
    assert again.event is None and again.after == first.after


def test_succeeded_pod_publishes_success(pod: dict[str, Any]) -> None:
    t = observe(with_status(pod, "Succeeded", containers=terminated(0, "Completed")))
    assert t.event is not None and t.event.state is TaskState.SUCCESS
    assert t.event.detail["exit_code"] == 0
    assert t.after == Published(Stage.SUCCEEDED)


def test_failed_pod_publishes_the_judged_failure(pod: dict[str, Any]) -> None:
    failed = with_status(pod, "Failed", containers=terminated(3, "Error", "disk full\n"))
    t = observe(failed)
    assert t.event is not None and t.event.state is TaskState.FAILED
    assert t.event.failure == judge(failed, FATAL).failure
    assert t.event.failure is not None and t.event.failure.exit_code == 3
    assert t.event.detail == {"node": "node-1", "start_latency_s": 3.0}
    assert t.after == Published(Stage.FAILED)


@pytest.mark.parametrize("reason", sorted(FATAL))
def test_pending_with_fatal_waiting_reason_fails(pod: dict[str, Any], reason: str) -> None:
    t = observe(with_status(pod, "Pending", containers=waiting(reason, "cannot pull")))
    assert t.event is not None and t.event.state is TaskState.FAILED
    assert t.event.failure == Failure(reason, "cannot pull", container="base")
    assert t.after == Published(Stage.FAILED)


def test_pending_while_creating_publishes_nothing_but_is_recorded(pod: dict[str, Any]) -> None:
    t = observe(with_status(pod, "Pending", containers=waiting("ContainerCreating")))
    assert t.event is None
    assert t.after is not None and t.after.stage is Stage.PENDING
    assert t.after.identity is not None and t.after.identity.launch_id == "launch-1"


def test_fatal_reasons_are_configurable(pod: dict[str, Any]) -> None:
    status = with_status(pod, "Pending", containers=waiting("ErrImagePull"))
    t = phases.observe(status, None, deleted=False, fatal_reasons=frozenset(), now=1.0)
    assert t is not None and t.event is None


def test_pending_pod_deleted_is_requeued(pod: dict[str, Any]) -> None:
    # Given a pod recorded as pending
    prior = observe(with_status(pod, "Pending")).after
    # When it is deleted before it ever ran
    t = observe(with_status(pod, "Pending", deleting=True), prior, deleted=True)
    # Then the task is requeued and the record forgotten
    assert t.event is not None and t.event.kind is EventKind.REQUEUE
    assert t.event.state is None and t.event.reason == DELETED_BEFORE_START
    assert t.after is None


def test_running_pod_deleted_fails(pod: dict[str, Any]) -> None:
    prior = observe(with_status(pod, "Running", containers=running())).after
    t = observe(with_status(pod, "Running", containers=running(), deleting=True), prior,
                deleted=True)
    assert t.event is not None and t.event.state is TaskState.FAILED
    assert t.event.reason == POD_DELETED
    assert t.after is None


def test_running_pod_killed_by_its_deletion_fails_as_deleted(pod: dict[str, Any]) -> None:
    # Given a running pod someone deleted; its container exits 143 on SIGTERM
    prior = observe(with_status(pod, "Running", containers=running())).after
    t = observe(with_status(pod, "Failed", containers=terminated(143, "Error"),
                            deleting=True), prior)
    # Then the reason says it was deleted, with the exit code in the failure
    assert t.event is not None and t.event.reason == POD_DELETED
    assert t.event.failure is not None and t.event.failure.exit_code == 143


def test_finished_pod_deleted_publishes_nothing_new(pod: dict[str, Any]) -> None:
    prior = observe(with_status(pod, "Succeeded", containers=terminated(0, "Completed"))).after
    t = observe(with_status(pod, "Succeeded", containers=terminated(0, "Completed")), prior,
                deleted=True)
    assert t.event is None and t.after is None


def test_pod_that_finished_and_was_deleted_unseen_reports_its_outcome(
        pod: dict[str, Any]) -> None:
    # Given a pod last seen Pending whose DELETED event carries phase Succeeded
    prior = observe(with_status(pod, "Pending")).after
    t = observe(with_status(pod, "Succeeded", containers=terminated(0, "Completed")), prior,
                deleted=True)
    # Then SUCCESS is published (not a requeue) and the record forgotten
    assert t.event is not None and t.event.state is TaskState.SUCCESS
    assert t.after is None


def test_terminal_record_stays_final(pod: dict[str, Any]) -> None:
    t = observe(with_status(pod, "Running", containers=running()), Published(Stage.FAILED))
    assert t.event is None and t.after == Published(Stage.FAILED)


def test_pod_without_podfleet_identity_is_ignored() -> None:
    foreign = {"metadata": {"name": "x", "uid": "u"}, "status": {"phase": "Running"}}
    assert phases.observe(foreign, None, deleted=False, fatal_reasons=FATAL) is None


@pytest.mark.parametrize(("stage", "expected"), [
    (Stage.PENDING, EventKind.REQUEUE), (Stage.RUNNING, EventKind.STATE)])
def test_pod_vanished_unwatched(pod: dict[str, Any], stage: Stage,
                                expected: EventKind) -> None:
    ident = phases.identity_of(with_status(pod, "Pending"))
    t = phases.vanished("uid-1", Published(stage, ident), now=1.0)
    assert t.event is not None and t.event.kind is expected
    if stage is Stage.RUNNING:
        assert t.event.reason == POD_VANISHED
    assert t.after is None


def test_finished_pod_vanished_publishes_nothing() -> None:
    t = phases.vanished("uid-1", Published(Stage.SUCCEEDED))
    assert t.event is None and t.after is None


@pytest.mark.parametrize("stage", list(Stage))
def test_records_survive_encoding(pod: dict[str, Any], stage: Stage) -> None:
    ident = phases.identity_of(with_status(pod, "Pending"))
    record = Published(stage, None if stage.is_final else ident)
    assert Published.decode(record.encode().encode()) == record
