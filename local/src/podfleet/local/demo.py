"""``podfleet demo``: a fleet of tasks through the whole pipeline, on this machine alone.

Nothing needs configuring: the demo starts the cluster simulator, a private Redis (unless
``PODFLEET_REDIS_URL`` names one), an SQLite metadata DB and a pool of ``podfleet worker``
processes, then submits a mixed fleet through the real :class:`~podfleet.executor.Executor`:
mostly tasks that succeed, some that exit non-zero, some OOM-killed, some whose image cannot be
pulled. Each task asks the simulated kubelet for its fate through pod annotations, so the demo
knows what every task's final state must be. It shows a live progress bar by state, then a
summary (final states and reasons, launch and end-to-end latency percentiles, pods/s, where
the metrics are) and exits 0 only if every task ended as its fate asked.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import secrets
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from podfleet.local.ports import free_port
from podfleet.local.stats import percentile

if TYPE_CHECKING:
    from podfleet.simulator.config import SimulatorConfig

DEFAULT_TASKS = 2000


@dataclass(frozen=True, slots=True)
class Fate:
    """What one demo task asks of the simulated kubelet, and what it must end as."""

    kind: str  # success | error | oom | image_pull
    duration_s: float

    def annotations(self) -> dict[str, str]:
        from podfleet.simulator.cluster import fate

        notes = {fate.DURATION: f"{self.duration_s:.3f}"}
        if self.kind == "error":
            notes[fate.EXIT_CODE] = "3"
        elif self.kind == "oom":
            notes[fate.OOM] = "true"
        elif self.kind == "image_pull":
            notes[fate.IMAGE_PULL_ERROR] = "true"
        return notes

    def satisfied_by(self, state: str, reason: str | None) -> bool:
        text = reason or ""
        if self.kind == "success":
            return state == "success"
        if state != "failed":
            return False
        if self.kind == "oom":
            return "OOMKilled" in text
        if self.kind == "image_pull":
            return "ErrImagePull" in text or "ImagePullBackOff" in text
        return "3" in text or "Error" in text


#: ``podfleet --help``'s line for this subcommand.
HELP = "run a fleet of tasks through the whole pipeline, locally"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tasks", type=int, default=DEFAULT_TASKS,
                        help=f"tasks in the fleet (default {DEFAULT_TASKS})")
    parser.add_argument("--processes", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--threads", type=int, default=8, help="threads per worker (default 8)")
    parser.add_argument("--rate", type=float, default=500.0,
                        help="cluster-wide pod creations/s (0 = unlimited; default 500)")
    parser.add_argument("--nodes", type=int, default=50,
                        help="simulated nodes (default 50), in each cluster")
    parser.add_argument("--clusters", type=int, default=1,
                        help="simulated clusters, each its own simulator process, that one "
                             "worker pool places the tasks among (default 1); the summary "
                             "adds a table per cluster")
    parser.add_argument("--mix", default="85,7,4,4",
                        help="percent success,error,oom,image-pull (default 85,7,4,4)")
    parser.add_argument("--duration", type=float, default=1.0,
                        help="mean task run time in seconds (default 1.0)")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="give up after this many seconds (default 600)")
    parser.add_argument("--seed", type=int, default=None, help="random seed for the fleet mix")
    parser.add_argument("--no-progress", action="store_true",
                        help="plain log lines instead of a live progress bar")
    parser.add_argument("--workdir", default=None,
                        help="keep the demo's DB, kubeconfig and logs here (default: a temp "
                             "dir, removed afterwards)")


def parse_mix(text: str) -> dict[str, float]:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 4:
        raise ValueError("--mix needs four percentages: success,error,oom,image-pull")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"--mix must be numbers, got {text!r}") from None
    if any(v < 0 for v in values) or sum(values) <= 0:
        raise ValueError("--mix percentages must be ≥ 0 and not all 0")
    total = sum(values)
    return dict(zip(("success", "error", "oom", "image_pull"),
                    (v / total for v in values), strict=True))


def make_fleet(count: int, mix: dict[str, float], mean_duration: float,
               rng: random.Random) -> list[Fate]:
    kinds = list(mix)
    weights = [mix[k] for k in kinds]
    return [Fate(rng.choices(kinds, weights)[0],
                 max(0.05, rng.expovariate(1 / mean_duration) if mean_duration > 0 else 0.05))
            for _ in range(count)]


def run(args: argparse.Namespace) -> int:
    if args.tasks < 1:
        print("podfleet demo: --tasks must be ≥ 1", file=sys.stderr)
        return 2
    if args.clusters < 1:
        print("podfleet demo: --clusters must be ≥ 1", file=sys.stderr)
        return 2
    if args.processes < 1 or args.threads < 1:
        print("podfleet demo: --processes and --threads must be ≥ 1", file=sys.stderr)
        return 2
    try:
        mix = parse_mix(args.mix)
    except ValueError as exc:
        print(f"podfleet demo: {exc}", file=sys.stderr)
        return 2
    with ExitStack() as stack:
        return _run_demo(args, mix, stack)
    return 1  # pragma: no cover - ExitStack does not swallow


def _say(text: str) -> None:
    print(text, flush=True)


def _cluster(nodes: int) -> SimulatorConfig:
    """The simulated cluster: quick to schedule and start, so the fleet's own time shows."""
    from podfleet.simulator.config import SimulatorConfig

    config = SimulatorConfig()
    config.cluster.nodes = nodes
    config.cluster.schedule_delay_s = 0.02
    config.cluster.container_start_delay_s = 0.2
    config.cluster.image_pull_backoff_s = 0.5
    config.default_termination_grace_period_s = 0
    return config


def _run_demo(args: argparse.Namespace, mix: dict[str, float], stack: ExitStack) -> int:
    from podfleet.local.fleet import LocalCluster, LocalFleet, local_clusters

    rng = random.Random(args.seed)
    fleet_of_tasks = make_fleet(args.tasks, mix, args.duration, rng)

    # The cluster simulator, Redis (the user's, or a private one), the SQLite DB and the
    # settings this process (the executor) and the workers share. The user's other
    # PODFLEET_* settings apply too.
    user_redis = os.environ.get("PODFLEET_REDIS_URL", "")
    metrics_port = free_port()
    several: list[LocalCluster] = [
        dataclasses.replace(spec, simulator=_cluster(args.nodes))
        for spec in local_clusters(args.clusters)] if args.clusters > 1 else []
    fleet = stack.enter_context(LocalFleet(
        workdir=args.workdir, simulator=None if several else _cluster(args.nodes),
        clusters=several, redis_url=user_redis or None,
        redis_prefix=f"podfleet-demo-{secrets.token_hex(3)}", namespace="default",
        metrics_port=metrics_port, inherit_env=True, env={
            "PODFLEET_LAUNCH_RATE": str(args.rate),
            "PODFLEET_PARALLELISM": "0",
            "PODFLEET_WATCHER_LEASE_SECONDS": "5",
            "PODFLEET_DELETE_POLICY": "always",
        }))
    assert fleet.simulator is not None
    if several:
        for name, simulator in fleet.simulators.items():
            _say(f"cluster {name}: simulator {simulator.url} ({args.nodes} nodes), "
                 f"kubeconfig {fleet.cluster_kubeconfig(name)}")
        _say(f"clusters file: {fleet.env['PODFLEET_CLUSTERS_FILE']}")
    else:
        _say(f"cluster simulator: {fleet.simulator.url} ({args.nodes} nodes), "
             f"kubeconfig {fleet.kubeconfig}")
    if user_redis:
        _say(f"redis: {fleet.redis_url} (PODFLEET_REDIS_URL)")
    else:
        _say(f"redis: private redis-server at {fleet.redis_url}")
    os.environ.update(fleet.env)
    settings = fleet.settings()
    _say(f"metadata DB: {settings.database.url}")

    # The worker pool.
    worker = fleet.workers.start(args.processes, args.threads)
    log_path = fleet.workers.log_path(0)
    _say(f"workers: {args.processes} processes × {args.threads} threads "
         f"(log {log_path}), metrics at http://127.0.0.1:{metrics_port}/metrics")
    try:
        waited = fleet.workers.wait_for_watcher(worker, timeout=90)
    except RuntimeError as exc:
        raise SystemExit(f"podfleet demo: {exc}; see the worker log {log_path}") from None
    _say(f"workers ready after {waited:.1f}s")

    # The executor, in this process, as a scheduler would hold it.
    from podfleet.executor import Executor
    from podfleet.executor.submission import TaskSubmission

    executor = Executor(settings)
    stack.callback(executor.terminate)
    executor.start()
    started = time.time()
    run_id = f"demo__{time.strftime('%Y-%m-%dT%H-%M-%S')}"
    from podfleet.contracts.keys import TaskKey

    submissions = [
        TaskSubmission(
            key=TaskKey("podfleet_demo", f"task_{i:05d}_{fate.kind}", run_id),
            command=["python", "-c", f"print('task {i}')"],
            executor_config={"annotations": fate.annotations()})
        for i, fate in enumerate(fleet_of_tasks)]
    for start in range(0, len(submissions), 1000):
        executor.submit_many(submissions[start:start + 1000])
    _say(f"submitted {len(submissions)} tasks in {time.time() - started:.2f}s "
         f"({_mix_text(fleet_of_tasks)})")

    fates = {s.key: fate for s, fate in zip(submissions, fleet_of_tasks, strict=True)}
    finished = _follow(executor, fates, args, worker)
    elapsed = time.time() - started
    return _summarise(executor, fates, finished, elapsed, metrics_port, worker, log_path,
                      args.rate)


def _mix_text(fleet: list[Fate]) -> str:
    counts = Counter(f.kind for f in fleet)
    return ", ".join(f"{counts[k]} {k.replace('_', '-')}" for k in
                     ("success", "error", "oom", "image_pull") if counts[k])


def _follow(executor: Any, fates: dict[Any, Fate], args: argparse.Namespace,
            worker: subprocess.Popen[bytes]) -> dict[Any, tuple[str, str | None]]:
    """Sync until every task is final (or the timeout); returns key -> (state, reason)."""
    finished: dict[Any, tuple[str, str | None]] = {}
    total = len(fates)
    deadline = time.time() + args.timeout
    with _progress(total, args.no_progress) as update:
        while len(finished) < total and time.time() < deadline:
            executor.sync()
            for key, (state, info) in executor.get_event_buffer().items():
                if key in fates and str(state) in ("success", "failed", "revoked"):
                    finished[key] = (str(state), info)
            update(len(finished), _state_counts(executor))
            if worker.poll() is not None:
                _say(f"workers exited with code {worker.returncode}; see the worker log")
                break
            time.sleep(0.1)
    return finished


def _state_counts(executor: Any) -> Counter[str]:
    import sqlalchemy as sa

    from podfleet.executor.db import TaskInstance

    with executor.engine.connect() as conn:
        return Counter({state: n for state, n in conn.execute(
            sa.select(TaskInstance.state, sa.func.count()).group_by(TaskInstance.state))})


@contextmanager
def _progress(total: int, plain: bool) -> Iterator[Any]:
    if plain or not sys.stdout.isatty():
        last = [0.0]

        def log_line(done: int, counts: Counter[str]) -> None:
            if time.time() - last[0] >= 2 or done == total:
                last[0] = time.time()
                _say(f"  {done}/{total} finished  " + _counts_text(counts))

        yield log_line
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("[bold]tasks"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TextColumn("{task.fields[states]}")) as progress:
        task_id = progress.add_task("tasks", total=total, states="")

        def update(done: int, counts: Counter[str]) -> None:
            progress.update(task_id, completed=done, states=_counts_text(counts))

        yield update


def _counts_text(counts: Any) -> str:
    return "  ".join(f"{state}={n}" for state, n in sorted(dict(counts).items()) if n)


def _summarise(executor: Any, fates: dict[Any, Fate],
               finished: dict[Any, tuple[str, str | None]], elapsed: float,
               metrics_port: int, worker: subprocess.Popen[bytes], log_path: Path,
               rate: float) -> int:
    from rich.console import Console
    from rich.table import Table

    rows = _timings(executor)
    console = Console()
    outcomes: Counter[tuple[str, str]] = Counter()
    wrong: list[str] = []
    for key, fate in fates.items():
        state, reason = finished.get(key, ("unfinished", None))
        outcomes[(state, _short_reason(reason))] += 1
        if not fate.satisfied_by(state, reason):
            wrong.append(f"{key}: expected {fate.kind}, got {state} ({reason})")

    table = Table(title="tasks by final state")
    table.add_column("state")
    table.add_column("reason")
    table.add_column("tasks", justify="right")
    for (state, reason), n in sorted(outcomes.items()):
        table.add_row(state, reason, str(n))
    console.print(table)

    launch = [r["launched_at"] - r["queued_at"] for r in rows
              if r.get("launched_at") and r.get("queued_at")]
    e2e = [r["finished_at"] - r["queued_at"] for r in rows
           if r.get("finished_at") and r.get("queued_at")]
    latency = Table(title="latency (seconds)")
    for column in ("", "p50", "p95", "p99", "max", "n"):
        latency.add_column(column, justify="right")
    for name, values in (("launch (submit → pod accepted)", launch),
                         ("end to end (submit → final state)", e2e)):
        latency.add_row(name, *(f"{percentile(values, q):.3f}" for q in (50, 95, 99)),
                        f"{max(values) if values else float('nan'):.3f}", str(len(values)))
    console.print(latency)
    if len({r["cluster"] for r in rows}) > 1:
        console.print(_cluster_table(rows))
    # launched_at is when the API accepted the pod; a task whose pod finished before the
    # launcher's event was applied has none (its state moved on first), but has a pod uid.
    launched_times = sorted(r["launched_at"] for r in rows if r.get("launched_at"))
    pods = sum(1 for r in rows if r.get("pod_uid") or r.get("launched_at"))
    queued_times = sorted(r["queued_at"] for r in rows if r.get("queued_at"))
    if launched_times and queued_times:
        span = max(launched_times[-1] - queued_times[0], 1e-6)
        limit = (f"cluster-wide limit {rate:g}/s with a burst of {max(1, int(rate))}"
                 if rate > 0 else "no rate limit")
        console.print(f"pods created: {pods}; launch rate {len(launched_times) / span:.0f} "
                      f"pods/s over {span:.2f}s ({limit})")
    console.print(f"whole fleet: {len(finished)}/{len(fates)} finished in {elapsed:.1f}s")
    console.print(f"metrics: http://127.0.0.1:{metrics_port}/metrics (workers; while running)")
    if wrong:
        console.print(f"[red]{len(wrong)} tasks did not end as their fate asked[/red]:")
        for line in wrong[:20]:
            console.print("  " + line)
        console.print(f"worker log: {log_path}")
        return 1
    console.print("[green]every task reached the state its fate asked for[/green]")
    return 0


def _timings(executor: Any) -> list[dict[str, Any]]:
    """Queue, launch and finish times of every task, read from the metadata DB."""
    import sqlalchemy as sa

    from podfleet.executor.db import TaskInstance

    columns = (TaskInstance.submitted_at, TaskInstance.launched_at, TaskInstance.finished_at,
               TaskInstance.pod_uid, TaskInstance.cluster, TaskInstance.state)
    with executor.engine.connect() as conn:
        return [{"queued_at": q, "launched_at": launched, "finished_at": done, "pod_uid": uid,
                 "cluster": cluster or "(not placed)", "state": state}
                for q, launched, done, uid, cluster, state in conn.execute(
                    sa.select(*columns))]


def _cluster_table(rows: list[dict[str, Any]]) -> Any:
    """Per cluster: its tasks by final state and its launch latency."""
    from rich.table import Table

    table = Table(title="tasks per cluster")
    for column in ("cluster", "tasks", "success", "failed", "launch p50", "launch p99"):
        table.add_column(column, justify="left" if column == "cluster" else "right")
    for cluster in sorted({r["cluster"] for r in rows}):
        mine = [r for r in rows if r["cluster"] == cluster]
        launch = [r["launched_at"] - r["queued_at"] for r in mine
                  if r.get("launched_at") and r.get("queued_at")]
        states = Counter(r["state"] for r in mine)
        table.add_row(cluster, str(len(mine)), str(states["success"]), str(states["failed"]),
                      f"{percentile(launch, 50):.3f}", f"{percentile(launch, 99):.3f}")
    return table


def _short_reason(reason: str | None) -> str:
    if not reason:
        return ""
    return reason if len(reason) <= 60 else reason[:57] + "..."
