"""The launch path end to end: signed messages in Redis → `podfleet worker` → simulator pods."""

from __future__ import annotations

import time
from collections import Counter

from launcher_support import Fleet  # type: ignore[import-not-found]

from podfleet.contracts.states import TaskState


def test_every_task_of_a_burst_becomes_exactly_one_pod(fleet: Fleet) -> None:
    # Given 400 tasks in launch messages of 50, and two worker processes
    requests = [fleet.request(i) for i in range(400)]
    fleet.send(requests)
    fleet.start_worker(processes=2, threads=4)

    # When every task has its outcome
    events = fleet.wait_for_events(400, timeout=90)

    # Then each task was launched once, and the cluster holds exactly one pod per task
    assert Counter(e.state for e in events) == {TaskState.LAUNCHED: 400}
    assert {e.launch_id for e in events} == {r.launch_id for r in requests}
    pods = fleet.pods()
    assert len(pods) == 400
    assert {p["metadata"]["uid"] for p in pods} == {e.pod_uid for e in events}
    assert fleet.sim.admin.stats().creates.accepted == 400


def test_a_pod_the_api_rejects_fails_its_task_with_the_api_reason(fleet: Fleet) -> None:
    # Given a task whose pod has a sidecar without an image (the API answers 422 Invalid)
    bad = fleet.request(0, executor_config={"pod_override": {"spec": {"containers": [
        {"name": "sidecar"}]}}})
    good = fleet.request(1)
    fleet.send([bad, good])
    fleet.start_worker()

    # When both outcomes are in
    events = {e.launch_id: e for e in fleet.wait_for_events(2)}

    # Then the bad task failed with the API server's own message, and the good one launched
    assert events[bad.launch_id].state is TaskState.FAILED
    reason = events[bad.launch_id].reason or ""
    assert "Invalid (422)" in reason and "spec.containers[1].image" in reason
    assert events[good.launch_id].state is TaskState.LAUNCHED
    assert [p["metadata"]["annotations"]["podfleet.io/launch-id"] for p in fleet.pods()] == [
        good.launch_id]


def test_a_task_past_its_deadline_fails_as_expired_and_creates_nothing(fleet: Fleet) -> None:
    # Given a launch whose deadline passed before any worker picked it up
    late = fleet.request(0, deadline=time.time() - 1)
    fleet.send([late])
    fleet.start_worker()

    # When its outcome is in
    (event,) = fleet.wait_for_events(1)

    # Then it failed as "expired" and no pod was created
    assert (event.state, event.reason) == (TaskState.FAILED, "expired")
    assert fleet.pods() == []
    assert fleet.sim.admin.stats().creates.accepted == 0


def test_a_redelivered_message_reports_launched_and_makes_no_second_pod(fleet: Fleet) -> None:
    # Given a message that was already handled once, then delivered again
    requests = [fleet.request(i) for i in range(5)]
    envelope = fleet.seal(requests)
    fleet.send_envelopes([envelope])
    fleet.start_worker()
    fleet.wait_for_events(5)
    fleet.send_envelopes([envelope])

    # When the second delivery is handled
    events = fleet.wait_for_events(10)

    # Then it reports each task launched again, as already existing, and no pod was added
    second = events[5:]
    assert all(e.state is TaskState.LAUNCHED and e.detail.get("already_exists")
               for e in second)
    assert {e.pod_uid for e in second} == {e.pod_uid for e in events[:5]}
    assert len(fleet.pods()) == 5
