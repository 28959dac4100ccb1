"""Queues with work split the pending cap by their weights: real ``podfleet worker``
processes (launchers and the watcher) against the simulator, counted from the simulator's
own pod list, not from podfleet's view.

The launch rate is off here so that the cap alone decides who launches: with a rate, each
queue's share of it spaces its launches by weight too, and the cap binds only on a host that
sustains the rate (``bench/bench_fairness.py --pending`` runs both). tests/admission covers
the rule itself.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

from pipeline_support import PendingSampler

from podfleet.broker import enqueue_envelopes, make_broker
from podfleet.contracts.keys import TaskKey
from podfleet.contracts.messages import LaunchBatch, LaunchRequest, new_launch_id
from podfleet.contracts.signing import MessageSigner
from podfleet.kube.client import KubeClient
from podfleet.local.fleet import LocalFleet
from podfleet.simulator.cluster import fate
from podfleet.simulator.cluster.config import ClusterConfig
from podfleet.simulator.config import SimulatorConfig

KEY = "test-pending-split-signing-key-0123456789"


def launch_messages(queue: str, count: int, executor_id: str,
                    start_s: float, spread: bool) -> list[dict[str, Any]]:
    """``count`` tasks of ``queue`` whose pods take ``start_s`` to start (with ``spread``,
    0.5-1.5 x that, so pods start steadily), sealed in messages of 50 as an executor sends
    them."""
    now = time.time()
    batch = [LaunchRequest(
        key=TaskKey(f"split-{queue}", f"t-{n}", "run-1", -1, 1), launch_id=new_launch_id(),
        command=("true",), executor_id=executor_id, namespace="default", queued_at=now,
        executor_config={"annotations": {
            fate.START_DELAY: f"{start_s * (0.5 + (n % 11) / 10 if spread else 1):.2f}",
            fate.DURATION: "0.2"}},
        queue=None if queue == "default" else queue) for n in range(count)]
    signer = MessageSigner(KEY.encode())
    return [LaunchBatch(requests=tuple(batch[i:i + 50])).seal(signer)
            for i in range(0, len(batch), 50)]


def run_split(tmp_path: Path, cap: int, start_s: float, spread: bool, tasks: int,
              watch_s: float, **env: str) -> tuple[list[tuple[float, Counter[str]]], float]:
    """etl (weight 3) fills the pending cap alone, then the default queue (weight 1) gets
    work; returns the Pending samples per queue and when the default queue got its work."""
    sim = SimulatorConfig(default_termination_grace_period_s=1,
                          cluster=ClusterConfig(nodes=20, default_run_time_s=0.2))
    executor_id = "split-test"
    env = {"PODFLEET_QUEUE_RATES": "etl=0", "PODFLEET_QUEUE_WEIGHTS": "etl=3",
           "PODFLEET_EXECUTOR_ID": executor_id, **env}
    with LocalFleet(workdir=tmp_path, simulator=sim, signing_key=KEY, migrate=False,
                    env=env) as fleet:
        settings = fleet.settings()
        assert settings.launch.max_pending_pods == cap
        broker = make_broker(settings)
        kube = KubeClient.from_config(kubeconfig=fleet.env["PODFLEET_KUBECONFIG"])
        fleet.workers.start(2, 8)
        etl = launch_messages("etl", tasks, executor_id, start_s, spread)
        default = launch_messages("default", tasks // 2, executor_id, start_s, spread)
        try:
            with PendingSampler(kube, "default") as sampler:
                enqueue_envelopes(broker, f"{settings.launch.queue}.etl", etl)
                deadline = time.monotonic() + 90
                while not sampler.samples or sampler.samples[-1][1]["etl"] < 0.8 * cap:
                    assert time.monotonic() < deadline, "etl never filled the cap"
                    time.sleep(0.1)
                time.sleep(1.0)
                enqueue_envelopes(broker, settings.launch.queue, default)
                joined = time.monotonic()
                time.sleep(watch_s)
                fleet.workers.check_alive()
        finally:
            kube.close()
            broker.close()
    return sampler.samples, joined


def default_share(samples: list[tuple[float, Counter[str]]], since: float) -> float:
    """The default queue's share of the Pending pods in the samples taken after ``since``."""
    settled = [c for at, c in samples if at > since]
    return sum(c["default"] for c in settled) / sum(sum(c.values()) for c in settled)


def test_busy_queues_split_the_pending_cap_by_weight(tmp_path: Path) -> None:
    # Given a pending cap of 60, no launch rate, etl weighing 3 and the default queue 1
    # (shares 45 and 15 while both have work), and pods that take 3 s to start
    # When etl fills the cap alone, and the default queue gets work a second later
    samples, joined = run_split(tmp_path, 60, 3.0, False, 1000, 10.0,
                                PODFLEET_MAX_PENDING_PODS="60", PODFLEET_LAUNCH_RATE="0")
    totals = [sum(c.values()) for _, c in samples]
    print(f"pending pods: peak {max(totals)} of cap 60")
    # Then pending pods never went above the cap ...
    assert max(totals) <= 60
    # ... the default queue got its first launch within a second of a slot freeing
    freed = next(at for at, c in samples if at > joined and sum(c.values()) < 60)
    first = next(at for at, c in samples if c["default"] > 0)
    assert first - freed <= 1.0, (first - freed)
    # ... and once the pods that were there when it joined had started, the cap was split
    # about 3:1 (45:15); first come, first served gave the default queue about half
    share = default_share(samples, joined + 3.0 + 1.5)
    print(f"default queue's share of pending pods: {100 * share:.1f}% (due 25%)")
    assert 0.18 <= share <= 0.32, share
