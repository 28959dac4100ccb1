"""Run a headless locust load test against a private podfleet stack, then print the numbers.

Starts, on this machine and on free loopback ports, a local fleet
(:class:`podfleet.local.fleet.LocalFleet`: a private ``redis-server``, the cluster simulator,
the shared settings) with a worker pool (``podfleet worker``) of the given size, then
``locust --headless`` with the load test's locustfile for the given users and time. Prints
users, submitted tasks/s, launch latency p50/p95/p99, end-to-end latency and failures (a table,
then one JSON line for machines), and stops everything it started.

    python -m podfleet.local.loadtest.run_headless --users 4 --tasks-per-second 25 \\
        --run-time 30 --worker-processes 2

Exit code: 0 when the run had no failures, 1 when it had some, 2 when the stack did not start.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from podfleet.local.fleet import LocalFleet
from podfleet.local.loadtest import END_TO_END, LAUNCH, LOCUSTFILE

BIN = Path(sys.executable).parent


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", "-u", type=int, default=4, help="locust users (executors)")
    parser.add_argument("--spawn-rate", "-r", type=float, default=None,
                        help="users started per second (default: all at once)")
    parser.add_argument("--run-time", "-t", type=float, default=30.0, help="seconds")
    parser.add_argument("--tasks-per-second", type=float, default=10.0,
                        help="tasks each user submits per second")
    parser.add_argument("--task-duration", type=float, default=0.2,
                        help="seconds each simulated task container runs")
    parser.add_argument("--worker-processes", type=int, default=2,
                        help="processes of the worker pool")
    parser.add_argument("--worker-threads", type=int, default=8,
                        help="threads per worker process")
    parser.add_argument("--launch-rate", type=float, default=0.0,
                        help="PODFLEET_LAUNCH_RATE, pods/s across the pool (0 = unlimited)")
    parser.add_argument("--nodes", type=int, default=50, help="simulated nodes")
    parser.add_argument("--out", type=Path, default=None,
                        help="directory for locust's CSV files and the logs (default: temp)")
    return parser.parse_args(argv)


def _fleet(out: Path, args: argparse.Namespace) -> LocalFleet:
    """The stack, on :class:`~podfleet.local.fleet.LocalFleet` (not started): a private Redis,
    the simulator (pods run ``--task-duration`` s) and the settings the pool and the locust
    users share, every log in ``out``. The user's PODFLEET_* settings apply too."""
    from podfleet.local.ports import free_port
    from podfleet.simulator.cluster.config import ClusterConfig
    from podfleet.simulator.config import SimulatorConfig

    return LocalFleet(
        workdir=out, simulator=SimulatorConfig(
            default_termination_grace_period_s=1, cluster=ClusterConfig(
                nodes=args.nodes, node_pods=1000, default_run_time_s=args.task_duration)),
        signing_key=os.environ.get("PODFLEET_SIGNING_KEY") or None,
        metrics_port=free_port(), inherit_env=True, env={
            "PODFLEET_LAUNCH_RATE": repr(args.launch_rate),
            "PODFLEET_PARALLELISM": "0",
            "PODFLEET_METRICS_DIR": str(out / "metrics"),
        })


def _start_workers(fleet: LocalFleet, args: argparse.Namespace) -> str:
    """The worker pool; returns its /metrics URL once it serves and a watcher holds the
    lease (before that no task can finish, so latencies would measure the start-up)."""
    from podfleet.local.ports import wait_for_port

    pool = fleet.workers.start(args.worker_processes, args.worker_threads)
    port = int(fleet.env["PODFLEET_METRICS_PORT"])
    wait_for_port("127.0.0.1", port, timeout=30)
    fleet.workers.wait_for_watcher(pool, timeout=60)
    return f"http://127.0.0.1:{port}/metrics"


def _locust(env: dict[str, str], out: Path, args: argparse.Namespace) -> int:
    spawn = args.spawn_rate or args.users
    command = [
        str(BIN / "locust"), "-f", str(LOCUSTFILE), "--headless",
        "--users", str(args.users), "--spawn-rate", str(spawn),
        "--run-time", f"{max(1, round(args.run_time))}s", "--stop-timeout", "10",
        "--csv", str(out / "podfleet"), "--json-file", str(out / "podfleet"),
        "--only-summary", "--loglevel", "WARNING",
        "--tasks-per-second", str(args.tasks_per_second),
        "--task-duration", str(args.task_duration),
    ]
    with open(out / "locust.log", "wb") as log:
        return subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                              check=False).returncode


def _stats(out: Path) -> dict[tuple[str, str], dict[str, str]]:
    with open(out / "podfleet_stats.csv", newline="") as handle:
        return {(row["Type"], row["Name"]): row for row in csv.DictReader(handle)}


def _submitted(out: Path) -> int:
    """Tasks submitted: the summed response_length of the submit events (locust's JSON)."""
    path = out / "podfleet.json"
    if not path.exists():
        return 0
    entries = json.loads(path.read_text())
    return sum(int(e.get("total_content_length", 0)) for e in entries
               if e.get("method") == "submit")


def _pods_created(metrics_url: str) -> float:
    """podfleet_pods_created_total{outcome="created"} summed, from the workers' endpoint."""
    with urllib.request.urlopen(metrics_url, timeout=10) as response:
        text = response.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("podfleet_pods_created_total{") and 'outcome="created"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def _number(row: dict[str, str] | None, column: str) -> float:
    if row is None:
        return 0.0
    raw = row.get(column, "") or "0"
    return float(raw) if re.fullmatch(r"[0-9.]+", raw) else 0.0


def summarise(stats: dict[tuple[str, str], dict[str, str]], submitted: int,
              args: argparse.Namespace, elapsed_s: float,
              pods_created: float | None) -> dict[str, Any]:
    launch = stats.get(LAUNCH)
    end_to_end = stats.get(END_TO_END)
    # Locust's CSV ends with an "Aggregated" row that sums the others: leave it out
    failures = {f"{kind}/{name}": int(_number(row, "Failure Count"))
                for (kind, name), row in stats.items() if name != "Aggregated"}
    return {
        "users": args.users,
        "worker_processes": args.worker_processes,
        "worker_threads": args.worker_threads,
        "run_time_s": round(elapsed_s, 1),
        "tasks_submitted": int(submitted),
        "submitted_tasks_per_s": round(submitted / elapsed_s, 1) if elapsed_s else 0.0,
        "launches": int(_number(launch, "Request Count")),
        "launch_ms": {p: _number(launch, f"{p}%") for p in ("50", "95", "99")},
        "tasks_finished": int(_number(end_to_end, "Request Count")),
        "end_to_end_ms": {p: _number(end_to_end, f"{p}%") for p in ("50", "95", "99")},
        "failures": failures,
        "pods_created_metric": pods_created,
    }


def _print(summary: dict[str, Any]) -> None:
    launch, e2e = summary["launch_ms"], summary["end_to_end_ms"]
    print(f"users                 {summary['users']}  "
          f"(pool: {summary['worker_processes']} processes × {summary['worker_threads']} threads)")
    print(f"run time              {summary['run_time_s']} s")
    print(f"submitted             {summary['tasks_submitted']} tasks, "
          f"{summary['submitted_tasks_per_s']} tasks/s")
    print(f"launch latency        p50 {launch['50']:.0f} ms  p95 {launch['95']:.0f} ms  "
          f"p99 {launch['99']:.0f} ms  ({summary['launches']} launches)")
    print(f"end-to-end latency    p50 {e2e['50']:.0f} ms  p95 {e2e['95']:.0f} ms  "
          f"p99 {e2e['99']:.0f} ms  ({summary['tasks_finished']} tasks finished)")
    print(f"failures              {sum(summary['failures'].values())} "
          f"{json.dumps(summary['failures'])}")
    print(f"pods created (metric) {summary['pods_created_metric']}")
    print("JSON " + json.dumps(summary, sort_keys=True))


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="podfleet-loadtest-"))
    out.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        try:
            fleet = stack.enter_context(_fleet(out, args))
            metrics_url = _start_workers(fleet, args)
        except (RuntimeError, TimeoutError, OSError) as exc:
            print(f"run_headless: the stack did not start: {exc} (logs in {out})",
                  file=sys.stderr)
            return 2
        started = time.monotonic()
        code = _locust(fleet.environment(), out, args)
        elapsed = time.monotonic() - started
        if not (out / "podfleet_stats.csv").exists():
            print(f"run_headless: locust exited {code} without results; see {out}/locust.log",
                  file=sys.stderr)
            return 2
        try:
            pods_created: float | None = _pods_created(metrics_url)
        except OSError:
            pods_created = None
        summary = summarise(_stats(out), _submitted(out), args, min(elapsed, args.run_time),
                            pods_created)
    _print(summary)
    if args.out is None and not sum(summary["failures"].values()):
        shutil.rmtree(out, ignore_errors=True)
    else:
        print(f"logs and CSV files: {out}")
    return 1 if sum(summary["failures"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
