"""Defence in depth: the launcher checks the pod policy on the pod it built, so a message
signed by an executor with other settings cannot run a pod where the workers forbid it."""

from __future__ import annotations

import dataclasses

from launcher_support import Fleet  # type: ignore[import-not-found]

from podfleet.contracts.states import TaskState


def test_a_launch_into_a_namespace_not_allowed_fails_and_creates_nothing(fleet: Fleet) -> None:
    # Given a signed launch whose pod would go to kube-system (its executor allowed it)
    forged = dataclasses.replace(fleet.request(0), namespace="kube-system")
    fleet.send([forged])
    fleet.start_worker()
    # When its outcome is in
    (event,) = fleet.wait_for_events(1)
    # Then it failed naming the rule, and nothing was created
    assert event.state is TaskState.FAILED
    assert "namespace 'kube-system' is not in PODFLEET_TASK_NAMESPACES" in (event.reason or "")
    assert fleet.sim.admin.stats().creates.accepted == 0
