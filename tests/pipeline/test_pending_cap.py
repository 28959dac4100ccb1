"""A burst of tasks on a 20-node cluster never has more pods Pending than the cap: launches
wait in their queue at the cap (no attempt spent, no task failed) and resume as pods start.

Counted from the simulator's own pod list, sampled throughout the run, not from podfleet's
view; the watcher and the launchers are real ``podfleet worker`` processes.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest
from pipeline_support import PendingSampler

from podfleet.contracts.keys import TaskKey
from podfleet.contracts.states import TaskState
from podfleet.executor import Executor, TaskSubmission
from podfleet.kube.client import KubeClient
from podfleet.local.fleet import LocalFleet
from podfleet.simulator.cluster import fate
from podfleet.simulator.cluster.config import ClusterConfig
from podfleet.simulator.config import SimulatorConfig


def run_burst(tmp_path: Path, tasks: int, start_delay_s: float, **env: str) -> tuple[
        list[int], Counter[TaskState], int]:
    """``tasks`` tasks submitted at once, each pod taking ``start_delay_s`` to start, on a
    20-node cluster, with ``env`` over podfleet's defaults; returns the Pending samples, the
    terminal states and the cap the fleet ran with."""
    sim = SimulatorConfig(default_termination_grace_period_s=1,
                          cluster=ClusterConfig(nodes=20, default_run_time_s=0.2))
    with LocalFleet(workdir=tmp_path, simulator=sim, env=env) as fleet:
        settings = fleet.settings()
        fleet.workers.start(2, 8)
        executor = Executor(settings)
        kube = KubeClient.from_config(kubeconfig=fleet.env["PODFLEET_KUBECONFIG"])
        fates = {fate.START_DELAY: str(start_delay_s), fate.DURATION: "0.2"}
        keys = [TaskKey("burst", f"t-{n}", "run-1", -1, 1) for n in range(tasks)]
        states: dict[TaskKey, TaskState] = {}
        try:
            with PendingSampler(kube, settings.kubernetes.namespace) as sampler:
                executor.submit_many([TaskSubmission(k, ["true"],
                                                     executor_config={"annotations": fates})
                                      for k in keys])
                deadline = time.monotonic() + 60 + tasks * 0.1
                while len(states) < tasks:
                    assert time.monotonic() < deadline, (
                        f"{len(states)} of {tasks} finished\n{fleet.workers.logs()[-3000:]}")
                    executor.sync()
                    for key, (state, _reason) in executor.get_event_buffer().items():
                        if state.is_terminal:
                            states[key] = state
                    fleet.workers.check_alive()
                    time.sleep(0.1)
        finally:
            executor.terminate()
            kube.close()
        pending = [sum(queues.values()) for _, queues in sampler.samples]
        return pending, Counter(states.values()), settings.launch.max_pending_pods


def test_a_burst_keeps_pending_pods_at_or_under_the_cap(tmp_path: Path) -> None:
    # Given a cap of 100 pods not yet Running, and pods that take 2 s to start (at the
    # default 100 creates/s, about 200 would be Pending at once without the cap)
    # When 600 tasks arrive at once
    samples, states, cap = run_burst(tmp_path, 600, 2.0, PODFLEET_MAX_PENDING_PODS="100")
    print(f"pending pods: peak {max(samples)} of cap {cap}, {len(samples)} samples")
    # Then every task succeeded (none failed for waiting) ...
    assert states == Counter({TaskState.SUCCESS: 600})
    # ... the cap bit, and Pending pods never went above it
    assert max(samples) <= cap == 100, max(samples)
    assert max(samples) >= 0.8 * cap, max(samples)


@pytest.mark.slow
def test_a_burst_of_5000_at_default_settings_keeps_pending_at_or_under_the_cap(
        tmp_path: Path) -> None:
    # Given podfleet's default settings, and pods that take 8 s to start (at the default
    # 100 creates/s, about 800 would be Pending at once without the cap)
    # When 5,000 tasks arrive at once
    samples, states, cap = run_burst(tmp_path, 5000, 8.0)
    print(f"pending pods: peak {max(samples)} of cap {cap}, {len(samples)} samples")
    # Then every task succeeded, and Pending pods never went above the default cap
    assert states == Counter({TaskState.SUCCESS: 5000})
    assert max(samples) <= cap, max(samples)
    assert max(samples) >= 0.8 * cap, max(samples)
