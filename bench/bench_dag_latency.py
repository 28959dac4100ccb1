"""Where a DAG's time goes: Airflow's ``example_complex`` (37 tasks) under the KubernetesExecutor
and under PodFleetExecutor, same simulator, its wall time split into scheduling, the executor's
launch, pod start and task run, with each executor's own two added latencies.

    python bench/bench_dag_latency.py              3 runs of the DAG per executor
    python bench/bench_dag_latency.py --quick      1 run per executor (CI smoke; no timing asserts)
    python bench/bench_dag_latency.py --runs 10    more runs, for steadier percentiles

Needs Airflow, as ``bench_airflow.py`` does (it re-executes itself with the Airflow
virtualenv's interpreter, and is skipped when there is none), and shares its set-up: one
simulator in its own process (simulated mode: a pod is bound, its container starts 0.2 s later
and succeeds ``--run-time`` seconds after that; no command runs), one throwaway
``AIRFLOW_HOME`` with SQLite holding Airflow's own ``example_complex.py``.

No Airflow scheduler runs. Each executor runs in a fresh interpreter, driven as the scheduler
drives it: a DagRun of ``example_complex``; every ``--loop-interval`` seconds (a scheduler loop)
the driver queues, in the DB and through ``queue_workload``, each task whose upstream tasks'
pods have all ended (a task writes its own success just before its pod ends, and Airflow 3
schedules the downstream from that, not from the executor's event), then calls ``heartbeat()``
and ``get_event_buffer()``. A pod watch in the same interpreter timestamps each pod's creation,
its container running and its end, as the API server shows them.

Per task (wall-clock timestamps):

* **scheduling**: its upstream's last pod ended → the driver queued it (the loop's wait and
  the DB write; a real scheduler's share is larger and the same for both executors);
* **launch** (the executor's, added latency one): queued (``queue_workload``, TI
  ``queued_dttm``) → its pod created;
* **pod start**: pod created → its container running (the simulator's bind and start delay);
* **task run**: container running → pod ended;
* **report** (the executor's, added latency two): pod ended → its final state in the event
  buffer the scheduler reads (``get_event_buffer()``).

The DAG's wall time (run start → last pod ended) is split along its critical path: from the
task whose pod ended last, back through the upstream whose pod ended last, to a root; the four
segments of those tasks add up to it. Printed side by side, with p50/p99 of each executor's
launch and report latencies over every task of every run. ``--quick`` asserts only that every
task of every run was launched and reported.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

# The script's folder is first on sys.path: bench_airflow's set-up is shared.
from bench_airflow import (
    POD_TEMPLATE,
    add_driver_arguments,
    airflow_env,
    bench_fleet,
    new_dag_run,
    outside_env,
    prepare_airflow,
    queue_tries,
    run_parent_or_child,
    scheduler_job,
    start_executor,
    stop_executor,
)

DAG_ID = "example_complex"
NAMESPACE = "default"
KE_BATCH = 32
SEGMENTS = ("scheduling", "launch", "pod_start", "task_run")


# --- the parent: shared services, one child per executor ------------------------------------

def write_dag(home: Path) -> None:
    """Airflow's own example_complex.py, as shipped with the installed Airflow."""
    import airflow.example_dags

    dags = home / "dags"
    dags.mkdir(parents=True, exist_ok=True)
    (home / "pod_template.yaml").write_text(POD_TEMPLATE)
    shutil.copy(Path(airflow.example_dags.__file__).with_name("example_complex.py"),
                dags / "example_complex.py")


def parent(args: argparse.Namespace) -> None:
    started = time.monotonic()
    runs = args.runs or (1 if args.quick else 3)
    print(f"{DAG_ID}: {runs} run(s) per executor; simulated pods start 0.2 s after binding and "
          f"run {args.run_time}s; driver loop every {args.loop_interval}s", flush=True)
    with tempfile.TemporaryDirectory(prefix="podfleet-bench-dag-") as tmp_name, bench_fleet(
            tmp_name, 4, args.run_time, "bench-dag") as fleet:
        tmp = fleet.workdir
        home = tmp / "airflow-home"
        write_dag(home)
        env = airflow_env(home, fleet.kubeconfig, 64, KE_BATCH, False)
        prepare_airflow(env, tmp, timeout=600)
        spec = {"runs": runs, "loop_interval": args.loop_interval, "timeout": args.timeout,
                "kubeconfig": str(fleet.kubeconfig)}
        results: dict[str, dict[str, Any]] = {}
        for kind in args.executors:
            print(f"\n--- {kind}", flush=True)
            extra = fleet.env if kind == "podfleet" else {}
            results[kind] = run_child(kind, spec, {**outside_env(), **env, **extra}, tmp,
                                      timeout=args.timeout * runs + 180)
        report(results)
        if args.quick:
            check(results)
    print(f"\nwall time {time.monotonic() - started:.1f}s", flush=True)


def run_child(kind: str, spec: dict[str, Any], env: dict[str, str], tmp: Path,
              timeout: float) -> dict[str, Any]:
    spec_file = tmp / f"{kind}-spec.json"
    out_file = tmp / f"{kind}-result.json"
    spec_file.write_text(json.dumps({**spec, "out": str(out_file)}))
    with open(tmp / f"{kind}.log", "wb") as log:
        code = subprocess.call([sys.executable, str(Path(__file__).resolve()), "--child", kind,
                                str(spec_file)], env=env, stdout=log, stderr=subprocess.STDOUT,
                               timeout=timeout, cwd=tmp)
    if code != 0 or not out_file.exists():
        text = (tmp / f"{kind}.log").read_text(errors="replace")
        raise RuntimeError(f"the {kind} run exited {code}:\n{text[-3000:]}")
    result: dict[str, Any] = json.loads(out_file.read_text())
    return result


def critical_path(tasks: dict[str, dict[str, float]], upstream: dict[str, list[str]],
                  start: float) -> dict[str, float]:
    """The run's wall time (start → last pod ended) split into the four segments along its
    critical path."""
    split = dict.fromkeys(SEGMENTS, 0.0)
    task: str | None = max(tasks, key=lambda t: tasks[t]["ended"])
    while task is not None:
        t = tasks[task]
        split["scheduling"] += t["queued"] - t["ready"]
        split["launch"] += t["created"] - t["queued"]
        split["pod_start"] += t["running"] - t["created"]
        split["task_run"] += t["ended"] - t["running"]
        ups = upstream.get(task) or []
        task = max(ups, key=lambda u: tasks[u]["ended"]) if ups else None
    return split


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    from podfleet.local.stats import percentile

    launch, reported, walls = [], [], []
    steps: dict[str, list[float]] = {"hand_off": [], "broker_launch": [], "watch": [],
                                     "apply_sync": [], "apply": [], "next_loop": []}
    splits = []
    for run in result["runs"]:
        tasks = run["tasks"]
        for t in tasks.values():
            launch.append(t["created"] - t["queued"])
            reported.append(t["reported"] - t["ended"])
            if "submitted" in t:
                steps["hand_off"].append(t["submitted"] - t["queued"])
                steps["broker_launch"].append(t["launched"] - t["submitted"])
                steps["watch"].append(t["finished"] - t["ended"])
                steps["apply_sync"].append(t["reported"] - t["finished"])
            if "handed" in t and "finished" in t:
                steps["apply"].append(t["handed"] - t["finished"])
                steps["next_loop"].append(t["reported"] - t["handed"])
        walls.append(max(t["ended"] for t in tasks.values()) - run["start"])
        splits.append(critical_path(tasks, result["upstream"], run["start"]))
    mean_split = {s: statistics.fmean(sp[s] for sp in splits) for s in SEGMENTS}
    return {
        "runs": len(result["runs"]),
        "tasks": sum(len(r["tasks"]) for r in result["runs"]),
        "wall_s": statistics.fmean(walls),
        "split_s": mean_split,
        "launch_p50_ms": percentile(launch, 50) * 1000,
        "launch_p99_ms": percentile(launch, 99) * 1000,
        "report_p50_ms": percentile(reported, 50) * 1000,
        "report_p99_ms": percentile(reported, 99) * 1000,
        "steps_ms": {name: (percentile(v, 50) * 1000, percentile(v, 99) * 1000)
                     for name, v in steps.items() if v},
    }


def report(results: dict[str, dict[str, Any]]) -> None:
    summaries = {kind: summarize(r) for kind, r in results.items()}
    names = {"kubernetes": "KubernetesExecutor", "podfleet": "PodFleetExecutor"}
    kinds = list(summaries)
    width = 22
    print("\n" + "".ljust(34) + "".join(names[k].rjust(width) for k in kinds), flush=True)

    def row(label: str, values: list[str]) -> None:
        print(label.ljust(34) + "".join(v.rjust(width) for v in values), flush=True)

    row("runs x tasks", [f"{s['runs']} x {s['tasks'] // s['runs']}" for s in summaries.values()])
    row("DAG wall time (to last pod end)", [f"{s['wall_s']:.2f} s" for s in summaries.values()])
    for segment in SEGMENTS:
        row(f"  critical path: {segment}",
            [f"{s['split_s'][segment]:.2f} s ({s['split_s'][segment] / s['wall_s']:.0%})"
             for s in summaries.values()])
    row("launch: queued -> pod created", [f"p50 {s['launch_p50_ms']:.0f} / p99 "
                                           f"{s['launch_p99_ms']:.0f} ms"
                                           for s in summaries.values()])
    row("report: pod ended -> event buffer", [f"p50 {s['report_p50_ms']:.0f} / p99 "
                                               f"{s['report_p99_ms']:.0f} ms"
                                               for s in summaries.values()])
    pf = summaries.get("podfleet", {}).get("steps_ms") or {}
    labels = {"hand_off": "launch 1: queued -> row written (hand-off, background thread)",
              "broker_launch": "launch 2: row written -> pod created (broker, launcher)",
              "watch": "report 1: pod ended -> podfleet's watcher saw it",
              "apply_sync": "report 2: watcher saw it -> event buffer (stream, apply, "
                            "Airflow DB read, next heartbeat)",
              "apply": "  2a: watcher saw it -> ready for the scheduler (stream, apply, "
                       "Airflow DB read)",
              "next_loop": "  2b: ready -> event buffer (the scheduler's next loop; not "
                           "podfleet's)"}
    if pf:
        print("\nPodFleetExecutor's two latencies, step by step (p50 / p99 ms):", flush=True)
    for name, (p50, p99) in pf.items():
        print(f"  {labels[name]}: {p50:.0f} / {p99:.0f}", flush=True)
    print("summary: " + json.dumps(summaries, default=str), flush=True)


def check(results: dict[str, dict[str, Any]]) -> None:
    """The smoke's correctness: every task of every run launched, ended and reported."""
    for kind, result in results.items():
        expected = len(result["upstream"])
        for run in result["runs"]:
            if len(run["tasks"]) != expected:
                raise SystemExit(f"{kind}: {len(run['tasks'])}/{expected} tasks measured")


# --- the child: one executor, driven like the scheduler would ------------------------------

class PodTimes:
    """Watches the namespace's pods: per task id, when its pod was created, its container was
    running and its pod ended (first seen, wall clock)."""

    def __init__(self, kubeconfig: str) -> None:
        from podfleet.kube.client import KubeClient

        self.kube = KubeClient.from_config(kubeconfig=kubeconfig)
        self.times: dict[tuple[str, str], dict[str, float]] = {}
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="pod-watch")

    def start(self) -> None:
        version = self.kube.list_pods(NAMESPACE).resource_version
        self._version = version
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._watch()
            except Exception as exc:  # an expired version, a dropped stream: list again
                print(f"pod watch: {exc}; listing again", flush=True)
                self._version = self.kube.list_pods(NAMESPACE).resource_version

    def _watch(self) -> None:
        for event in self.kube.watch_pods(NAMESPACE, resource_version=self._version,
                                          timeout_seconds=30, read_timeout=40):
            now = time.time()
            pod = event.get("object") or {}
            meta = pod.get("metadata") or {}
            self._version = meta.get("resourceVersion") or self._version
            annotations = meta.get("annotations") or {}
            run_id, task_id = annotations.get("run_id"), annotations.get("task_id")
            if not run_id or not task_id or event.get("type") == "BOOKMARK":
                continue
            phase = (pod.get("status") or {}).get("phase")
            with self.lock:
                seen = self.times.setdefault((run_id, task_id), {})
                seen.setdefault("created", now)
                if phase == "Running" or phase in ("Succeeded", "Failed"):
                    seen.setdefault("running", now)
                if phase in ("Succeeded", "Failed") or event.get("type") == "DELETED":
                    seen.setdefault("ended", now)

    def of(self, run_id: str, task_id: str) -> dict[str, float]:
        with self.lock:
            return dict(self.times.get((run_id, task_id), {}))


def child(kind: str, spec_file: str) -> None:
    import logging

    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.utils.session import create_session

    spec = json.loads(Path(spec_file).read_text())
    logging.basicConfig(level=logging.WARNING)
    job_id = scheduler_job()
    with create_session() as session:
        dag = SerializedDagModel.get_dag(DAG_ID, session=session)
        assert dag is not None, f"{DAG_ID} was not serialized"
        upstream = {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks}

    pods = PodTimes(spec["kubeconfig"])
    pods.start()
    executor, workers = start_executor(kind, job_id, Path(spec_file).parent)
    if kind == "podfleet":
        time_handed_states(executor)
    runs = []
    try:
        for _ in range(int(spec["runs"])):
            runs.append(run_dag(executor, kind, job_id, upstream, pods, spec))
            time.sleep(1.0)  # the last pods' deletes settle between runs
    finally:
        stop_executor(executor, workers)
    if kind == "podfleet":
        add_podfleet_times(runs)
    Path(spec["out"]).write_text(json.dumps({"upstream": upstream, "runs": runs}))


#: (run_id, task_id) → when podfleet's background thread had the task's final state ready
#: for the scheduler's next heartbeat (after the Airflow DB read it does for it).
HANDED: dict[tuple[str, str], float] = {}


def time_handed_states(executor: Any) -> None:
    """Timestamp each final state as the background thread hands it over: it wraps the
    thread's look-up, which runs just before the state is ready for ``heartbeat()``."""
    from podfleet.contracts.states import TERMINAL_STATES

    thread = executor._thread
    look_up = thread.on_events

    def timed(events: dict[Any, Any]) -> None:
        if look_up is not None:
            look_up(events)
        now = time.time()
        for key, (state, _info) in events.items():
            if state in TERMINAL_STATES:
                HANDED.setdefault((key.run_id, key.task_id), now)

    thread.on_events = timed


def add_podfleet_times(runs: list[dict[str, Any]]) -> None:
    """Each task's times in podfleet's own DB: ``submitted`` (the background thread wrote its
    row), ``launched`` (the launcher's create was accepted) and ``finished`` (the watcher saw
    its pod end), to split podfleet's two latencies into their steps."""
    import sqlalchemy as sa

    engine = sa.create_engine(os.environ["PODFLEET_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT run_id, task_id, submitted_at, launched_at, finished_at "
                "FROM task_instances WHERE dag_id = :dag"), {"dag": DAG_ID}).all()
    finally:
        engine.dispose()
    found = {(r[0], r[1]): r[2:] for r in rows}
    for run in runs:
        for task, times in run["tasks"].items():
            row = found.get((run["run_id"], task))
            if row is not None and None not in row:
                times.update(submitted=row[0], launched=row[1], finished=row[2])
            handed = HANDED.get((run["run_id"], task))
            if handed is not None:
                times["handed"] = handed


def run_dag(executor: Any, kind: str, job_id: int, upstream: dict[str, list[str]],
            pods: PodTimes, spec: dict[str, Any]) -> dict[str, Any]:
    """One DagRun to its end; per task: ready, queued, created, running, ended, reported."""
    from airflow.executors.workloads import ExecuteTask

    from podfleet.airflow.compat import ti_key

    interval = float(spec["loop_interval"])
    run_id = new_dag_run(DAG_ID, kind)
    start = time.time()
    ready: dict[str, float] = {t: start for t, ups in upstream.items() if not ups}
    queued: dict[str, float] = {}
    reported: dict[str, float] = {}
    keys: dict[Any, str] = {}
    deadline = time.monotonic() + float(spec["timeout"])
    while len(reported) < len(upstream):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(reported)}/{len(upstream)} reported after "
                               f"{spec['timeout']}s")
        loop_started = time.monotonic()
        # Ready: every upstream pod ended (the tasks wrote their success just before).
        for task, ups in upstream.items():
            if task in ready or not ups:
                continue
            ends = [pods.of(run_id, u).get("ended") for u in ups]
            if all(e is not None for e in ends):
                ready[task] = max(e for e in ends if e is not None)
        due = [t for t in ready if t not in queued]
        if due:
            for ti in queue_tries(DAG_ID, run_id, job_id, due):
                executor.queue_workload(ExecuteTask.make(ti), session=None)
                queued[ti.task_id] = time.time()
                keys[ti_key(executor, ti)] = ti.task_id
        executor.heartbeat()
        now = time.time()
        for key, _event in executor.get_event_buffer().items():
            task = keys.get(key)
            if task is not None and key not in executor.running and task not in reported:
                reported[task] = now
        time.sleep(max(0.0, interval - (time.monotonic() - loop_started)))
    # The pod watch may see a pod's end a moment after the executor reported it.
    wait_until = time.monotonic() + 10
    while time.monotonic() < wait_until and not all(
            "ended" in pods.of(run_id, t) for t in upstream):
        time.sleep(0.05)
    tasks = {}
    for task in upstream:
        seen = pods.of(run_id, task)
        tasks[task] = {"ready": ready[task], "queued": queued[task],
                       "created": seen["created"], "running": seen.get("running", seen["ended"]),
                       "ended": seen["ended"], "reported": reported[task]}
    return {"run_id": run_id, "start": start, "tasks": tasks}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_driver_arguments(parser, "driver loops (heartbeat() calls)")
    parser.add_argument("--quick", action="store_true", help="1 run per executor")
    parser.add_argument("--runs", type=int, default=0, help="DAG runs per executor")
    parser.add_argument("--timeout", type=float, default=180.0,
                        help="seconds one DAG run may take")
    run_parent_or_child(parser.parse_args(), parent, child, str(Path(__file__).resolve()))


if __name__ == "__main__":
    main()
