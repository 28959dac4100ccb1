"""One worker pool, one executor, 1, 2 and 3 clusters: pods/s and per-cluster launch latency.

    python bench/bench_multicluster.py            full run (3,000 tasks per step, minutes)
    python bench/bench_multicluster.py --quick    smoke (150 tasks per step, under a minute)

Everything is real, a local fleet (``podfleet.local.fleet.LocalFleet`` with
``clusters=``): each cluster a simulator process of its own, a private Redis, SQLite, one
``podfleet worker`` pool (``--processes`` × ``--threads``) and the Executor in this process.
For each cluster count the executor submits the same tasks, free to run on any cluster, and
syncs until all have finished. Reported per step: the create rate over the run (pods the
clusters stored per second, first create to last), the end-to-end wall time, and per
cluster its share of the pods and its launch latency (submit → the API accepted the pod)
p50/p99. Correctness is checked, never timing: every task succeeds once, and no launch has a
pod in two clusters (each simulator's own record of what it stored, ``GET /_sim/creates``).
A 2-core machine shares its cores between the simulators, the workers and this process, so
more clusters here do not mean more CPU: the step from 1 to 3 clusters shows podfleet's own
cost of placement, not a real fleet's scaling.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from podfleet.local.fleet import LocalFleet, local_clusters
from podfleet.local.stats import percentile

SIGNING_KEY = "bench-multicluster-signing-key-0123456789"
NAMESPACE = "default"


def _simulator() -> Any:
    from podfleet.simulator.cluster.config import ClusterConfig
    from podfleet.simulator.config import SimulatorConfig

    return SimulatorConfig(
        default_termination_grace_period_s=0,
        cluster=ClusterConfig(nodes=50, node_pods=500, schedule_delay_s=0.01,
                              container_start_delay_s=0.05, default_run_time_s=0.1,
                              termination_delay_s=0.02))


def run_step(clusters: int, tasks: int, processes: int, threads: int,
             workdir: Path) -> dict[str, Any]:
    """One fleet of ``clusters`` clusters running ``tasks`` tasks; its numbers."""
    import dataclasses

    from podfleet.executor import Executor, TaskSubmission
    from podfleet.executor.db import TaskInstance

    specs = [dataclasses.replace(spec, simulator=_simulator())
             for spec in local_clusters(clusters)]
    with LocalFleet(workdir=workdir, clusters=specs, namespace=NAMESPACE,
                    signing_key=SIGNING_KEY, redis_prefix=f"bmc-{uuid.uuid4().hex[:6]}",
                    env={"PODFLEET_PARALLELISM": "0", "PODFLEET_LAUNCH_RATE": "0",
                         "PODFLEET_MAX_PENDING_PODS": "0",
                         "PODFLEET_DELETE_POLICY": "never",
                         "PODFLEET_WATCHER_LEASE_SECONDS": "5"}) as fleet:
        worker = fleet.workers.start(processes, threads)
        fleet.workers.wait_for_watcher(worker, timeout=120)
        executor = Executor(fleet.settings({"PODFLEET_EXECUTOR_ID": "bench"}))
        executor.start()
        try:
            for simulator in fleet.simulators.values():
                simulator.admin.reset_stats()
            run_id = f"run-{uuid.uuid4().hex[:6]}"
            submissions = [TaskSubmission(("bench_multicluster", f"t{i}", run_id, -1, 1),
                                          ["true"]) for i in range(tasks)]
            began = time.time()
            for start in range(0, tasks, 1000):
                executor.submit_many(submissions[start:start + 1000])
            finished: Counter[str] = Counter()
            reported = 0
            deadline = time.monotonic() + max(120.0, tasks / 5)
            while reported < tasks:
                executor.sync()
                for _key, (state, _info) in executor.get_event_buffer().items():
                    if state.is_terminal:
                        finished[state.value] += 1
                        reported += 1
                if time.monotonic() > deadline:
                    raise SystemExit(f"{clusters} cluster(s): {reported}/{tasks} finished "
                                     f"in time; worker log:\n{fleet.workers.logs()[-2000:]}")
                fleet.workers.check_alive()
                time.sleep(0.02)
            wall = time.time() - began
            with sa.orm.Session(executor.engine) as session:
                rows = session.execute(sa.select(
                    TaskInstance.cluster, TaskInstance.launch_id, TaskInstance.submitted_at,
                    TaskInstance.launched_at)).all()
            creates = {name: simulator.admin.creates()
                       for name, simulator in fleet.simulators.items()}
        finally:
            executor.terminate()
    return _report(clusters, tasks, wall, finished, rows, creates)


def _report(clusters: int, tasks: int, wall: float, finished: Counter[str],
            rows: list[Any], creates: dict[str, Any]) -> dict[str, Any]:
    problems = []
    if finished != Counter({"success": tasks}):
        problems.append(f"outcomes {dict(finished)}, not {tasks} successes")
    launches_seen: Counter[str] = Counter()
    times: list[float] = []
    for name, stored in creates.items():
        names = [pod for _at, _namespace, pod in stored]
        if len(names) != len(set(names)):
            problems.append(f"cluster {name} stored a pod name twice")
        launches_seen.update(set(names))
        times.extend(at for at, _namespace, _pod in stored)
    twice = [pod for pod, n in launches_seen.items() if n > 1]
    if twice:
        problems.append(f"{len(twice)} pod(s) stored in two clusters, e.g. {twice[0]}")
    span = max(times) - min(times) if len(times) > 1 else float("nan")
    per_cluster: dict[str, dict[str, Any]] = {}
    for cluster in sorted({row.cluster or "?" for row in rows}):
        latency = [row.launched_at - row.submitted_at for row in rows
                   if (row.cluster or "?") == cluster and row.launched_at]
        per_cluster[cluster] = {
            "pods": sum(1 for row in rows if (row.cluster or "?") == cluster),
            "launch_p50_s": round(percentile(latency, 50), 3),
            "launch_p99_s": round(percentile(latency, 99), 3)}
    return {"clusters": clusters, "tasks": tasks, "wall_s": round(wall, 2),
            "pods_per_s": round(len(times) / span, 1) if span == span and span > 0 else None,
            "per_cluster": per_cluster, "problems": problems}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run (CI)")
    parser.add_argument("--tasks", type=int, default=None, help="tasks per step")
    parser.add_argument("--clusters", default="1,2,3", help="cluster counts to run")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args()
    tasks = args.tasks or (150 if args.quick else 3000)
    counts = [int(n) for n in args.clusters.split(",")]
    print(f"machine load: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} cores",
          flush=True)
    failed = False
    import tempfile

    for count in counts:
        with tempfile.TemporaryDirectory(prefix="bench-multicluster-") as workdir:
            result = run_step(count, tasks, args.processes, args.threads, Path(workdir))
        clusters_text = "  ".join(
            f"{name}: {c['pods']} pods, launch p50 {c['launch_p50_s']}s "
            f"p99 {c['launch_p99_s']}s" for name, c in result["per_cluster"].items())
        print(f"{count} cluster(s): {tasks} tasks in {result['wall_s']}s, "
              f"{result['pods_per_s']} pods/s created; {clusters_text}", flush=True)
        for problem in result["problems"]:
            print(f"  PROBLEM: {problem}", flush=True)
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
