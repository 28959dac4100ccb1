"""A launcher paused (SIGSTOP, as a GC pause or a frozen VM) while it holds rate-limiter
permits, then resumed: the cluster-wide rate holds in every 1 s window, counted by the
simulator's own clock, not by podfleet."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter

import pytest
from pipeline_support import Pipeline, submit_tasks, wait_for

from podfleet.contracts.states import TaskState
from podfleet.simulator.admin import busiest_window

RATE = 20


@pytest.mark.slow
def test_a_launcher_resumed_after_a_pause_does_not_spend_its_old_permits_at_once(
        pipeline: Pipeline) -> None:
    # Given a launcher at 20 creates/s cluster-wide; burst 1, so the rate itself bounds every
    # 1 s window (a burst would legitimately allow rate + burst); finished pods are deleted
    pipeline.env.update({"PODFLEET_DELETE_POLICY": "always", "PODFLEET_LAUNCH_RATE": str(RATE),
                         "PODFLEET_LAUNCH_BURST": "1"})
    pipeline.start_worker(queues=["podfleet.watch"])
    paused = pipeline.start_worker(watcher=False)
    pipeline.wait_for_watcher()
    executor = pipeline.started_executor(batch_size=40)
    keys = submit_tasks(executor, 200, "0.2")
    # When one launcher is stopped mid-launch, holding permits, for longer than they last
    # (but less than the broker heartbeat, so its messages stay its own)
    wait_for(lambda: pipeline.stats().creates.accepted >= 40, timeout=60,
             what="the launcher mid-launch")
    os.killpg(paused.pid, signal.SIGSTOP)
    try:
        time.sleep(2.0)
    finally:
        os.killpg(paused.pid, signal.SIGCONT)
    # Then every task finishes once, with one pod each
    pipeline.run_until_finished(executor, keys, timeout=60)
    assert pipeline.terminal_reports() == Counter({(k, TaskState.SUCCESS): 1 for k in keys})
    assert pipeline.stats().creates.accepted == len(keys)
    # ... and no 1 s window, sliding, held more than 5 % above the rate, by the simulator
    times = pipeline.sim.admin.create_times()
    assert len(times) == len(keys)
    peak, _ = busiest_window(times, window_s=1.0)
    assert peak <= RATE * 1.05, f"{peak} creates within one second at a {RATE}/s limit"
