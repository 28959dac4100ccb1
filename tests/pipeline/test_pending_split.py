"""Queues with work split the pending cap by their weights: real ``podfleet worker``
processes (launchers and the watcher) against the simulator, counted from the simulator's
own pod list, not from podfleet's view.

The launch rate is off here so that the cap alone decides who launches: with a rate, each
queue's share of it already spaces its launches by weight (tests/admission covers the rule
itself; ``bench/bench_fairness.py --pending`` runs both at default settings).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from podfleet.broker import enqueue_envelopes, make_broker
from podfleet.contracts.keys import TaskKey
from podfleet.contracts.messages import LaunchBatch, LaunchRequest, new_launch_id
from podfleet.contracts.naming import MANAGED_SELECTOR, QUEUE_ANNOTATION
from podfleet.contracts.signing import MessageSigner
from podfleet.kube.client import KubeClient
from podfleet.local.fleet import LocalFleet
from podfleet.simulator.cluster import fate
from podfleet.simulator.cluster.config import ClusterConfig
from podfleet.simulator.config import SimulatorConfig

KEY = "test-pending-split-signing-key-0123456789"
CAP = 60
START_S = 3.0


def launch_messages(queue: str, count: int, executor_id: str) -> list[dict[str, Any]]:
    """``count`` tasks of ``queue`` whose pods take START_S to start, sealed in messages of
    50 as an executor sends them."""
    now = time.time()
    annotations = {fate.START_DELAY: f"{START_S:g}", fate.DURATION: "0.2"}
    batch = [LaunchRequest(
        key=TaskKey(f"split-{queue}", f"t-{n}", "run-1", -1, 1), launch_id=new_launch_id(),
        command=("true",), executor_id=executor_id, namespace="default", queued_at=now,
        executor_config={"annotations": annotations},
        queue=None if queue == "default" else queue) for n in range(count)]
    signer = MessageSigner(KEY.encode())
    return [LaunchBatch(requests=tuple(batch[i:i + 50])).seal(signer)
            for i in range(0, len(batch), 50)]


class PendingByQueue:
    """Samples the namespace's Pending podfleet pods per task queue every 0.1 s."""

    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube
        self.samples: list[tuple[float, Counter[str]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PendingByQueue:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            pods = self.kube.list_pods("default", label_selector=MANAGED_SELECTOR,
                                       page_size=100_000).items  # one instant: one page
            self.samples.append((time.monotonic(), Counter(
                str((p["metadata"].get("annotations") or {}).get(QUEUE_ANNOTATION))
                for p in pods if (p.get("status") or {}).get("phase") == "Pending")))


def test_busy_queues_split_the_pending_cap_by_weight(tmp_path: Path) -> None:
    # Given a pending cap of 60, etl weighing 3 and the default queue 1 (shares 45 and 15
    # while both have work), and pods that take 3 s to start
    sim = SimulatorConfig(default_termination_grace_period_s=1,
                          cluster=ClusterConfig(nodes=20, default_run_time_s=0.2))
    executor_id = "split-test"
    env = {"PODFLEET_MAX_PENDING_PODS": str(CAP), "PODFLEET_LAUNCH_RATE": "0",
           "PODFLEET_QUEUE_RATES": "etl=0", "PODFLEET_QUEUE_WEIGHTS": "etl=3",
           "PODFLEET_EXECUTOR_ID": executor_id}
    with LocalFleet(workdir=tmp_path, simulator=sim, signing_key=KEY, migrate=False,
                    env=env) as fleet:
        settings = fleet.settings()
        broker = make_broker(settings)
        kube = KubeClient.from_config(kubeconfig=fleet.env["PODFLEET_KUBECONFIG"])
        fleet.workers.start(2, 8)
        etl = launch_messages("etl", 1000, executor_id)
        default = launch_messages("default", 500, executor_id)
        try:
            with PendingByQueue(kube) as sampler:
                # When etl fills the cap alone, and the default queue gets work a second later
                enqueue_envelopes(broker, f"{settings.launch.queue}.etl", etl)
                deadline = time.monotonic() + 60
                while not sampler.samples or sampler.samples[-1][1]["etl"] < CAP:
                    assert time.monotonic() < deadline, "etl never filled the cap"
                    time.sleep(0.1)
                time.sleep(1.0)
                enqueue_envelopes(broker, settings.launch.queue, default)
                joined = time.monotonic()
                # ... and pods start, twice over
                time.sleep(3 * START_S + 1)
                fleet.workers.check_alive()
        finally:
            kube.close()
            broker.close()
    samples = sampler.samples
    totals = [sum(c.values()) for _, c in samples]
    print(f"pending pods: peak {max(totals)} of cap {CAP}")
    # Then pending pods never went above the cap ...
    assert max(totals) <= CAP
    # ... the default queue got its first launch within a second of a slot freeing
    freed = next(at for at, c in samples if at > joined and sum(c.values()) < CAP)
    first = next(at for at, c in samples if c["default"] > 0)
    assert first - freed <= 1.0, (first - freed)
    # ... and once the pods that were there when it joined had started, the cap was split
    # about 3:1 (45:15)
    settled = [c for at, c in samples if at > joined + START_S + 1.5]
    default_share = sum(c["default"] for c in settled) / sum(sum(c.values()) for c in settled)
    print(f"default queue's share of pending pods: {100 * default_share:.1f}% (due 25%)")
    assert 0.18 <= default_share <= 0.32, default_share
