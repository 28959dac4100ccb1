"""The launcher against a misbehaving API server: errors, timeouts, crashes, a rate limit."""

from __future__ import annotations

import bisect
import time
from collections import Counter

import pytest
from launcher_support import Fleet  # type: ignore[import-not-found]

from podfleet.contracts.states import TaskState
from podfleet.simulator.faults import VerbFaults


def test_throttling_errors_and_timeouts_end_in_every_pod_created_once(fleet: Fleet) -> None:
    # Given an API server answering a third of creates with 429, 503 or not at all
    fleet.sim.admin.set_faults(
        verbs={"create": VerbFaults(error_429=0.12, error_503=0.12, timeout=0.06)},
        retry_after_s=0, timeout_mode="hold", timeout_hold_s=3.0, seed=7)
    requests = [fleet.request(i) for i in range(100)]
    fleet.send(requests, batch_size=25)
    fleet.start_worker(processes=1, threads=8, PODFLEET_LAUNCH_MAX_ATTEMPTS="30",
                       PODFLEET_KUBE_TIMEOUT_SECONDS="0.5")

    # When every task has an outcome
    events = fleet.wait_for_events(100, timeout=120)

    # Then every task launched, each as exactly one pod, after retries
    assert Counter(e.state for e in events) == {TaskState.LAUNCHED: 100}
    assert {e.launch_id for e in events} == {r.launch_id for r in requests}
    pods = fleet.pods()
    assert len(pods) == 100
    assert len({p["metadata"]["name"] for p in pods}) == 100
    stats = fleet.sim.admin.stats()
    assert sum(stats.faults_injected.values()) > 0
    assert max(e.detail["attempts"] for e in events) > 1


@pytest.mark.slow
def test_a_task_that_never_gets_through_fails_with_the_last_reason(fleet: Fleet) -> None:
    # Given an API server that answers every create with 503
    fleet.sim.admin.set_faults(verbs={"create": VerbFaults(error_503=1.0)})
    fleet.send([fleet.request(0)])
    fleet.start_worker(PODFLEET_LAUNCH_MAX_ATTEMPTS="3")

    # When its outcome is in
    (event,) = fleet.wait_for_events(1, timeout=30)

    # Then it failed after its retry budget, saying why
    assert event.state is TaskState.FAILED
    assert "gave up after 3 attempts" in (event.reason or "")
    assert "ServiceUnavailable (503)" in (event.reason or "")
    assert fleet.sim.admin.stats().creates.rejected["ServiceUnavailable"] == 3


@pytest.mark.slow
def test_a_worker_killed_mid_batch_loses_nothing_and_duplicates_nothing(fleet: Fleet) -> None:
    # Given slow creates, and a worker that is SIGKILLed while it is creating pods
    fleet.sim.admin.set_faults(verbs={"create": VerbFaults(latency_ms=25)})
    requests = [fleet.request(i) for i in range(150)]
    fleet.send(requests, batch_size=50)
    doomed = fleet.start_worker(processes=1, threads=2)
    deadline = time.monotonic() + 60
    while fleet.sim.admin.stats().creates.accepted < 40:
        assert time.monotonic() < deadline, fleet.worker_logs()[-3000:]
        time.sleep(0.02)
    fleet.kill_worker(doomed)
    killed_at = fleet.sim.admin.stats().creates.accepted
    assert killed_at < 150

    # When another worker takes over (the dead one's messages are redelivered)
    fleet.start_worker(processes=1, threads=4)
    deadline = time.monotonic() + 90
    while len({e.launch_id for e in fleet.events()}) < 150:
        assert time.monotonic() < deadline, fleet.worker_logs()[-3000:]
        time.sleep(0.1)

    # Then every task launched, and the cluster holds exactly one pod per task
    events = fleet.events()
    assert {e.state for e in events} == {TaskState.LAUNCHED}
    assert {e.launch_id for e in events} == {r.launch_id for r in requests}
    assert len(fleet.pods()) == 150
    assert fleet.sim.admin.stats().creates.accepted == 150
    # ... and the dead worker's in-flight message was redelivered (its pods found existing)
    assert any(e.detail.get("already_exists") for e in events)


@pytest.mark.slow
def test_the_rate_limit_holds_across_four_worker_processes(fleet: Fleet) -> None:
    # Given 4 worker processes sharing a limit of 200 creates/s with a burst of 5
    limit = {"PODFLEET_LAUNCH_RATE": "200", "PODFLEET_LAUNCH_BURST": "5"}
    for _ in range(4):
        fleet.start_worker(processes=1, threads=4, **limit)
    requests = [fleet.request(i) for i in range(600)]
    fleet.send(requests, batch_size=20)

    # When every task has launched
    events = fleet.wait_for_events(600, timeout=90)

    # Then no 1-second window saw more than 200 × 1.05 creates sent to the API
    sent = sorted(e.detail["sent_at"] for e in events)
    busiest = max(bisect.bisect_left(sent, t + 1.0) - i for i, t in enumerate(sent))
    assert busiest <= 210, busiest
    # ... and the pool kept close to the limit rather than far under it
    assert busiest >= 150, busiest
