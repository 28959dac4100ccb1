"""The periodic resync's cost and reach, with every pod event dropped (no watcher runs).

    python bench/bench_resync.py            2,000 tasks, a 30 s period (minutes)
    python bench/bench_resync.py --quick    150 tasks, a 3 s period (seconds; CI smoke)

A local fleet (simulator, Redis, SQLite) launches the tasks with no watcher, so every task
stays LAUNCHED after its pod finished until the executor's resync finds it. Prints the list
calls and the resync's own work time (``podfleet_resync_duration_seconds``), both per 10,000
tracked tasks, and the longest any task stayed stranded after its pod ended, against the
goal: one resync period.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

from podfleet.contracts.keys import TaskKey
from podfleet.contracts.pod_status import finished_at
from podfleet.executor import Executor, TaskSubmission
from podfleet.local.fleet import LocalFleet
from podfleet.local.waiting import wait_for
from podfleet.monitoring.metrics import RESYNC_DURATION
from podfleet.simulator.cluster import fate


def _resync_work_seconds() -> float:
    for metric in RESYNC_DURATION.collect():
        for sample in metric.samples:
            if sample.name.endswith("_sum"):
                return float(sample.value)
    return 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--tasks", type=int)
    parser.add_argument("--period", type=float)
    args = parser.parse_args()
    tasks = args.tasks or (150 if args.quick else 2000)
    period = args.period or (3.0 if args.quick else 30.0)
    with tempfile.TemporaryDirectory() as tmp, LocalFleet(workdir=tmp, env={
            "PODFLEET_PARALLELISM": "0", "PODFLEET_LAUNCH_RATE": "0",
            "PODFLEET_DELETE_POLICY": "never", "PODFLEET_QUEUED_TIMEOUT_SECONDS": "0",
            "PODFLEET_PENDING_TIMEOUT_SECONDS": "0",
            "PODFLEET_RESYNC_SECONDS": str(period)}) as fleet:
        fleet.workers.start(1, 8, watcher=False)
        executor = Executor(fleet.settings())
        executor.resync.page_size = 100  # several pages even in the smoke
        executor.start()
        keys = [TaskKey("bench_resync", f"t{n}", "r", 1) for n in range(tasks)]
        executor.submit_many([TaskSubmission(key, ["true"], executor_config={
            "annotations": {fate.DURATION: "0.1"}}) for key in keys])
        kube = executor.kube
        namespace = fleet.settings().kubernetes.namespace

        def finished_pods() -> list[float]:
            pods = kube.list_pods(namespace).items
            return [t for t in (finished_at(p) for p in pods) if t is not None]

        wait_for(lambda: len(finished_pods()) >= tasks, timeout=600, what="every pod finished")
        ended = finished_pods()
        fleet.simulator.admin.reset_stats()
        work_before = _resync_work_seconds()
        done: dict[TaskKey, float] = {}
        deadline = time.monotonic() + 4 * period + 60
        while len(done) < tasks and time.monotonic() < deadline:
            executor.sync()
            now = time.time()
            for key, (state, _) in executor.get_event_buffer().items():
                if state.is_terminal:
                    done.setdefault(key, now)
            time.sleep(0.02)
        lists = sum(fleet.simulator.admin.stats().requests.get("list", {}).values())
        work = _resync_work_seconds() - work_before
        executor.terminate()
    stranded = max(done.values(), default=0.0) - min(ended, default=0.0)
    per = 10_000 / tasks
    print(f"tasks {tasks}, resync period {period:g}s, repaired {len(done)}")
    print(f"list calls per 10k tasks:          {lists * per:.0f}")
    print(f"resync work per 10k tasks (s):     {work * per:.2f}")
    print(f"longest stranded (s):              {stranded:.1f} (goal: <= {period:g} + grace)")
    if len(done) < tasks:
        print(f"FAILED: {tasks - len(done)} task(s) never repaired", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
