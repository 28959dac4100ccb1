"""Airflow side by side: the KubernetesExecutor and podfleet's PodFleetExecutor, same cluster.

    python bench/bench_airflow.py              1,000 tasks per executor (about a minute)
    python bench/bench_airflow.py --quick      100 tasks per executor (CI smoke, about 25 s)
    python bench/bench_airflow.py --ke-async   the KubernetesExecutor with async_pod_creation
    python bench/bench_airflow.py --ke-batch 64     its worker_pods_creation_batch_size
    python bench/bench_airflow.py --only podfleet --tasks 10000   one executor, 10,000 tasks
    python bench/bench_airflow.py --only podfleet --tasks 10000 --scheduler-core
                                              the rest of the run at nice 10 (the
                                              scheduler as on a machine of its own)
    python bench/bench_airflow.py --keep-logs DIR   keep the executors' and workers' logs
                                                    (BENCH_AF_LOG=INFO: Airflow's INFO lines)

Needs Airflow: run from the main venv, the script re-executes itself with the Airflow
virtualenv's interpreter (``$TEST_AIRFLOW_PYTHON``, else ``.venv-airflow/bin/python``; built
by ``scripts/airflow-venv.sh``) and is skipped when there is none.

One simulator in its own process (simulated mode: a pod is bound, starts 0.2 s later and
succeeds ``--run-time`` seconds after that; no command runs), one throwaway ``AIRFLOW_HOME``
with SQLite, migrated once, holding a generated DAG of N independent tasks. Each executor then
runs in a fresh interpreter of its own, driven the way the scheduler drives it but without one: a
scheduler Job row, a DagRun whose N task instances are set QUEUED (try 1, queued by that job),
one ``ExecuteTask`` workload per task instance (``ExecuteTask.make`` from the ORM rows) handed
to ``queue_workload``, then ``heartbeat()`` every ``--loop-interval`` seconds until every key
has had its final event from ``get_event_buffer()`` (an event after which the key has left
``executor.running``: the pod finished). No task runs in simulated mode, so the state in that
final event is the one the DB holds, QUEUED, for both executors alike (each reports the DB's
state for a pod that succeeded, as the task would have written it).

Reported per executor:

* **pods/s**: accepted pod creates per second, seen from the simulator's side (``/_sim/stats``
  polled every 20 ms by the parent process), first to last create;
* **time to all finished**: first ``queue_workload`` until the last key's final event;
* **CPU s per pod**: user+system CPU of the executor's process tree over the run, divided by
  N: this interpreter and its children (the KubernetesExecutor's multiprocessing Manager and
  watcher process; podfleet's ``podfleet worker`` processes with launchers and the watcher).
  podfleet's Redis is shown apart (it is a server, as the Kubernetes API is);
* **heartbeat()**: p50, p99, mean and max duration of the scheduler-side calls, over the run (all N
  tasks queued at the first one). The KubernetesExecutor creates and deletes its pods inside
  ``heartbeat()`` (up to a batch per call) and reads the DB per finished pod; podfleet's
  ``heartbeat()`` writes one batch of submissions and applies events, the workers create.
* **scheduler CPU per task**: CPU time of the calling thread (the scheduler loop's) spent in
  ``queue_workload``, ``heartbeat()`` and ``get_event_buffer()``, divided by N; an executor's
  own background threads and processes are in the process tree's CPU above, not here. The
  ratio KubernetesExecutor / PodFleetExecutor is printed for each scheduler-side figure.

Settings that shape the result are printed: the KubernetesExecutor's
``worker_pods_creation_batch_size`` (pods created per heartbeat, sequentially), podfleet's
launch rate limit (far above what is reached, so it is not the bottleneck), workers and
threads. Both executors delete finished pods; podfleet's log archive is off (the
KubernetesExecutor keeps none).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from podfleet.local.fleet import LocalFleet, WorkerPools

ROOT = Path(__file__).resolve().parents[1]
DAG_ID = "bench_airflow"
NAMESPACE = "default"
SIGNING_KEY = "bench-airflow-signing-key-0123456789"
KE_BATCH = 32
PODFLEET_RATE = 2000
PODFLEET_WORKERS = 1
PODFLEET_THREADS = 8


# --- the interpreter ------------------------------------------------------------------------

def ensure_airflow(script: str | None = None) -> None:
    """Re-execute ``script`` (this one by default) with the Airflow virtualenv's Python unless
    Airflow imports here."""
    try:
        import airflow  # noqa: F401
    except ImportError:
        pass
    else:
        return
    python = os.environ.get("TEST_AIRFLOW_PYTHON") or str(ROOT / ".venv-airflow/bin/python")
    if not Path(python).exists():
        print("skipped: no .venv-airflow (scripts/airflow-venv.sh builds it)", flush=True)
        sys.exit(0)
    os.execv(python, [python, script or str(Path(__file__).resolve()), *sys.argv[1:]])


# --- the parent: shared services, one child per executor ------------------------------------

def airflow_env(home: Path, kubeconfig: Path, tasks: int, ke_batch: int,
                ke_async: bool) -> dict[str, str]:
    """The environment both executors' interpreters (and ``airflow db migrate``) run with."""
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR":
            "KubernetesExecutor,podfleet:podfleet.airflow.executor.PodFleetExecutor",
        "AIRFLOW__CORE__PARALLELISM": str(max(1024, 2 * tasks)),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": os.environ.get("BENCH_AF_LOG", "WARNING"),
        # Not the bench's business, and each is a DB or API round trip per heartbeat.
        "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "3600",
        "AIRFLOW__KUBERNETES_EXECUTOR__IN_CLUSTER": "False",
        "AIRFLOW__KUBERNETES_EXECUTOR__CONFIG_FILE": str(kubeconfig),
        "AIRFLOW__KUBERNETES_EXECUTOR__NAMESPACE": NAMESPACE,
        "AIRFLOW__KUBERNETES_EXECUTOR__WORKER_PODS_CREATION_BATCH_SIZE": str(ke_batch),
        "AIRFLOW__KUBERNETES_EXECUTOR__ASYNC_POD_CREATION": str(ke_async),
        "AIRFLOW__KUBERNETES_EXECUTOR__DELETE_WORKER_PODS": "True",
        "AIRFLOW__KUBERNETES_EXECUTOR__DELETE_WORKER_PODS_ON_FAILURE": "True",
        "AIRFLOW__KUBERNETES_EXECUTOR__POD_TEMPLATE_FILE": str(home / "pod_template.yaml"),
        "AIRFLOW__KUBERNETES_EXECUTOR__WORKER_CONTAINER_REPOSITORY": "apache/airflow",
        "AIRFLOW__KUBERNETES_EXECUTOR__WORKER_CONTAINER_TAG": "3.3.2",
    }


# Airflow's own example templates set restartPolicy Never (without one, Kubernetes' default,
# Always, keeps a finished worker's container restarting, and the simulator's pod never ends).
POD_TEMPLATE = """\
apiVersion: v1
kind: Pod
metadata:
  name: placeholder
spec:
  restartPolicy: Never
  containers:
    - name: base
      image: apache/airflow:3.3.2
"""


def write_dag(home: Path, tasks: int) -> None:
    dags = home / "dags"
    dags.mkdir(parents=True, exist_ok=True)
    (home / "pod_template.yaml").write_text(POD_TEMPLATE)
    (dags / f"{DAG_ID}.py").write_text(textwrap.dedent(f"""\
        from airflow.sdk import DAG
        from airflow.providers.standard.operators.empty import EmptyOperator

        with DAG("{DAG_ID}", schedule=None, catchup=False):
            for i in range({tasks}):
                EmptyOperator(task_id=f"t{{i:05d}}")
        """))


class CreatePoller:
    """Polls the simulator's accepted-create counter, timestamping every change."""

    def __init__(self, sim: Any) -> None:
        from podfleet.simulator.admin import AdminClient

        self.admin = AdminClient(sim.url, sim.token, ssl_context=sim.ssl_context())
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CreatePoller:
        self.base = self.admin.stats().creates.accepted
        self._thread.start()
        return self

    def _run(self) -> None:
        last = self.base
        while not self._stop.is_set():
            accepted = self.admin.stats().creates.accepted
            if accepted != last:
                self.samples.append((time.monotonic(), accepted - self.base))
                last = accepted
            self._stop.wait(0.02)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def rate(self) -> tuple[int, float, float]:
        """(pods created, seconds from the first to the last create, pods/s)."""
        if not self.samples:
            return 0, 0.0, 0.0
        created = self.samples[-1][1]
        # The first sample's creates happened within one poll before it.
        span = self.samples[-1][0] - self.samples[0][0] + 0.02
        return created, span, (created / span if span > 0 else 0.0)


def outside_env() -> dict[str, str]:
    """This process's environment without its AIRFLOW* and PODFLEET_* variables: what an
    Airflow command or an executor's interpreter starts from, under the bench's own."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PODFLEET_"))}


def prepare_airflow(env: dict[str, str], cwd: Path, timeout: float) -> None:
    """``airflow db migrate`` and ``airflow dags reserialize`` with ``env``, timed."""
    airflow_bin = str(Path(sys.executable).with_name("airflow"))
    t0 = time.monotonic()
    for command in (["db", "migrate"], ["dags", "reserialize"]):
        done = subprocess.run([airflow_bin, *command], env={**outside_env(), **env}, text=True,
                              capture_output=True, timeout=timeout, cwd=cwd)
        if done.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(command)}: {done.stdout[-2000:]}"
                               f"{done.stderr[-2000:]}")
    print(f"airflow db migrate + dags reserialize: {time.monotonic() - t0:.1f}s", flush=True)


def run_child(kind: str, spec: dict[str, Any], env: dict[str, str], tmp: Path,
              sim: Any, timeout: float) -> dict[str, Any]:
    spec_file = tmp / f"{kind}-spec.json"
    out_file = tmp / f"{kind}-result.json"
    spec_file.write_text(json.dumps({**spec, "out": str(out_file)}))
    base = outside_env()
    with CreatePoller(sim) as poller, open(tmp / f"{kind}.log", "wb") as log:
        code = subprocess.call([sys.executable, str(Path(__file__).resolve()), "--child", kind,
                                str(spec_file)], env={**base, **env}, stdout=log,
                               stderr=subprocess.STDOUT, timeout=timeout, cwd=tmp)
    if code != 0 or not out_file.exists():
        text = (tmp / f"{kind}.log").read_text(errors="replace")
        kept = Path(tempfile.mkstemp(prefix=f"bench-airflow-{kind}-", suffix=".log")[1])
        kept.write_text(text)
        raise RuntimeError(f"the {kind} run exited {code} (its log: {kept}):\n{text[-3000:]}")
    result: dict[str, Any] = json.loads(out_file.read_text())
    created, span, rate = poller.rate()
    result.update(pods_created=created, create_span_s=round(span, 3), pods_per_s=round(rate, 1))
    return result


def bench_fleet(workdir: str, nodes: int, run_time_s: float, redis_prefix: str,
                **env: str) -> LocalFleet:
    """The simulator, Redis and podfleet's migrated SQLite DB and settings both executors run
    on: ``nodes`` nodes whose pods start 0.2 s after binding and run ``run_time_s``; podfleet
    with its log archive off, deleting every finished pod, and ``env`` over that."""
    from podfleet.local.fleet import LocalFleet
    from podfleet.simulator.cluster.config import ClusterConfig
    from podfleet.simulator.config import SimulatorConfig

    return LocalFleet(
        workdir=workdir, simulator=SimulatorConfig(cluster=ClusterConfig(
            nodes=nodes, node_pods=110, schedule_delay_s=0.02, container_start_delay_s=0.2,
            default_run_time_s=run_time_s, termination_delay_s=0.05)),
        redis_prefix=f"{redis_prefix}-{uuid.uuid4().hex[:8]}", signing_key=SIGNING_KEY,
        namespace=NAMESPACE, env={
            "PODFLEET_LOG_ARCHIVE": "off",
            "PODFLEET_DELETE_POLICY": "always",
            "PODFLEET_HEARTBEAT_SECONDS": "1",
            "PODFLEET_WATCHER_LEASE_SECONDS": "3",
            **env,
        })


def parent(args: argparse.Namespace) -> None:
    n = args.tasks or (100 if args.quick else 1000)
    started = time.monotonic()
    print(f"tasks per executor: {n}; simulated pod run time {args.run_time}s; "
          f"heartbeat every {args.loop_interval}s", flush=True)
    creates = "concurrent (async_pod_creation)" if args.ke_async else "sequential"
    print(f"KubernetesExecutor: worker_pods_creation_batch_size={args.ke_batch} ({creates} creates "
          f"per heartbeat), delete_worker_pods=True", flush=True)
    print(f"PodFleetExecutor: launch rate limit {PODFLEET_RATE}/s, {PODFLEET_WORKERS} worker "
          f"process(es) x {PODFLEET_THREADS} threads, podfleet DB SQLite, log archive off",
          flush=True)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # The simulator, Redis and podfleet's migrated SQLite DB and settings; the KubernetesExecutor
    # uses the same simulator. podfleet's workers start in its executor's interpreter (child).
    with tempfile.TemporaryDirectory(prefix="podfleet-bench-airflow-") as tmp_name, bench_fleet(
            tmp_name, 20, args.run_time, "bench-af",
            PODFLEET_LAUNCH_RATE=str(PODFLEET_RATE)) as fleet:
        tmp, sim = fleet.workdir, fleet.simulator
        try:
            home = tmp / "airflow-home"
            write_dag(home, n)
            env = airflow_env(home, fleet.kubeconfig, n, args.ke_batch, args.ke_async)
            prepare_airflow(env, tmp, timeout=300)
            spec = {"tasks": n, "loop_interval": args.loop_interval,
                    "timeout": args.timeout,
                    "redis_pid": fleet.redis_server.pid if fleet.redis_server else None,
                    "simulator_pid": getattr(getattr(sim, "process", None), "pid", None),
                    "scheduler_core": args.scheduler_core}
            results = {}
            for kind in args.executors:
                print(f"\n--- {kind}", flush=True)
                extra = fleet.env if kind == "podfleet" else {}
                results[kind] = run_child(kind, spec, {**env, **extra}, tmp, sim,
                                          timeout=args.timeout + 120)
                report(kind, results[kind])
            compare(results)
        finally:
            if args.keep_logs:
                keep = Path(args.keep_logs)
                keep.mkdir(parents=True, exist_ok=True)
                for log_file in tmp.glob("*.log"):
                    shutil.copy(log_file, keep / log_file.name)
    print(f"\nwall time {time.monotonic() - started:.1f}s", flush=True)
    summary = {"tasks": n, "run_time_s": args.run_time, "loop_interval_s": args.loop_interval,
               "ke_batch_size": args.ke_batch, "ke_async_pod_creation": args.ke_async,
               "podfleet_launch_rate": PODFLEET_RATE,
               **{f"{kind}_{k}": v for kind, r in results.items() for k, v in r.items()
                  if k in ("pods_per_s", "all_finished_s", "cpu_s_per_pod",
                           "heartbeat_mean_ms", "heartbeat_max_ms", "heartbeat_p50_ms",
                           "heartbeat_p99_ms", "heartbeat_cpu_p99_ms",
                           "scheduler_cpu_ms_per_task",
                           "redis_cpu_s_per_pod")}}
    print("summary: " + json.dumps(summary), flush=True)


def report(kind: str, r: dict[str, Any]) -> None:
    print(f"pods created {r['pods_created']}/{r['tasks']}: {r['pods_per_s']} pods/s "
          f"(first to last create {r['create_span_s']}s)", flush=True)
    print(f"all {r['tasks']} finished in the event buffer after {r['all_finished_s']}s "
          f"(first final event {r['first_finished_s']}s; {r['heartbeats']} heartbeats)",
          flush=True)
    print(f"CPU {r['cpu_s']}s for the executor's process tree ({r['processes']} processes) "
          f"= {r['cpu_s_per_pod'] * 1000:.2f} ms per pod; "
          f"this interpreter alone {r['cpu_self_s']}s", flush=True)
    if r.get("redis_cpu_s") is not None:
        print(f"Redis CPU {r['redis_cpu_s']}s = {r['redis_cpu_s_per_pod'] * 1000:.2f} ms per pod",
              flush=True)
    print(f"heartbeat(): p50 {r['heartbeat_p50_ms']} ms, p99 {r['heartbeat_p99_ms']} ms, "
          f"max {r['heartbeat_max_ms']} ms, mean {r['heartbeat_mean_ms']} ms, "
          f"first {r['heartbeat_first_ms']} ms (all {r['tasks']} queued); its own CPU p99 "
          f"{r['heartbeat_cpu_p99_ms']} ms, max {r['heartbeat_cpu_max_ms']} ms (the rest is "
          f"waiting: the GIL, the machine)", flush=True)
    if r.get("slowest_calls"):
        print(f"the slowest {r['slowest_calls']} heartbeat() calls (p99 and up), mean: "
              f"{r['slowest_wall_ms']} ms = its own CPU {r['slowest_own_ms']} ms + the "
              f"process's other threads' CPU {r['slowest_others_ms']} ms (waits for the GIL) "
              f"+ {r['slowest_rest_ms']} ms neither (waits for a core, I/O)", flush=True)
    print(f"scheduler CPU {r['scheduler_cpu_ms_per_task']} ms per task (the scheduler thread "
          f"in queue_workload, heartbeat and get_event_buffer)", flush=True)
    print(f"final states: {r['final_states']}", flush=True)


def compare(results: dict[str, dict[str, Any]]) -> None:
    """KubernetesExecutor over PodFleetExecutor, per scheduler-side figure."""
    ke, pf = results.get("kubernetes"), results.get("podfleet")
    if not ke or not pf:
        return
    print("\n--- KubernetesExecutor / PodFleetExecutor", flush=True)
    for name in ("heartbeat_p50_ms", "heartbeat_p99_ms", "heartbeat_max_ms",
                 "scheduler_cpu_ms_per_task"):
        ratio = ke[name] / pf[name] if pf[name] else float("inf")
        print(f"{name}: {ke[name]} / {pf[name]} = {ratio:.1f}x", flush=True)


# --- the child: one executor, driven like the scheduler would ------------------------------

class TreeCpu:
    """CPU seconds of this process and its descendants since :meth:`mark`."""

    def __init__(self) -> None:
        import psutil

        self.me = psutil.Process()
        self.base: dict[int, float] = {}

    def _tree(self) -> dict[int, float]:
        import psutil

        times: dict[int, float] = {}
        for proc in [self.me, *self.me.children(recursive=True)]:
            try:
                t = proc.cpu_times()
            except psutil.Error:
                continue
            # A child's own children that it waited for are in children_*; count them too.
            times[proc.pid] = t.user + t.system + t.children_user + t.children_system
        return times

    def mark(self) -> None:
        self.base = self._tree()

    def since(self) -> tuple[float, int, float]:
        """(tree CPU s, processes in the tree, this process's own CPU s), since the mark."""
        now = self._tree()
        total = sum(v - self.base.get(pid, 0.0) for pid, v in now.items())
        own = now[self.me.pid] - self.base.get(self.me.pid, 0.0)
        return total, len(now), own


def process_cpu(pid: int | None) -> float | None:
    import psutil

    if pid is None:
        return None
    try:
        t = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return None
    return float(t.user + t.system)


def scheduler_job() -> int:
    """The id of a running SchedulerJob row: the job whose tries the executor is given."""
    from airflow.jobs.job import Job
    from airflow.utils.session import create_session

    with create_session() as session:
        job = Job(job_type="SchedulerJob", state="running")
        session.add(job)
        session.commit()
        return int(job.id)


def new_dag_run(dag_id: str, kind: str) -> str:
    """A fresh manual DagRun of the serialized DAG ``dag_id``: its run id."""
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    with create_session() as session:
        dag = SerializedDagModel.get_dag(dag_id, session=session)
        assert dag is not None, f"{dag_id} was not serialized"
        run = dag.create_dagrun(run_id=f"bench_{kind}_{uuid.uuid4().hex[:8]}",
                                run_after=datetime.now(UTC), run_type=DagRunType.MANUAL,
                                triggered_by=DagRunTriggeredByType.TEST,
                                state=DagRunState.RUNNING, session=session)
        return str(run.run_id)


def queue_tries(dag_id: str, run_id: str, job_id: int,
                task_ids: list[str] | None = None) -> list[Any]:
    """The run's task instances (those of ``task_ids``, or all) QUEUED by ``job_id`` as the
    scheduler queues a try, read back detached with the dag run and DAG model a workload
    needs."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState
    from sqlalchemy import select
    from sqlalchemy.orm import joinedload

    query = select(TaskInstance).where(TaskInstance.dag_id == dag_id,
                                       TaskInstance.run_id == run_id)
    if task_ids is not None:
        query = query.where(TaskInstance.task_id.in_(task_ids))
    with create_session() as session:
        for ti in session.scalars(query).all():
            ti.state = TaskInstanceState.QUEUED
            ti.try_number = 1
            ti.queued_by_job_id = job_id
            ti.queued_dttm = datetime.now(UTC)
            ti.external_executor_id = str(uuid.uuid4())
        session.commit()
    with create_session() as session:
        rows = session.scalars(query.options(joinedload(TaskInstance.dag_run),
                                             joinedload(TaskInstance.dag_model))).unique().all()
        session.expunge_all()
        return list(rows)


def make_executor(kind: str) -> Any:
    if kind == "kubernetes":
        from airflow.providers.cncf.kubernetes.executors.kubernetes_executor import (
            KubernetesExecutor,
        )

        return KubernetesExecutor()
    from podfleet.airflow.executor import PodFleetExecutor

    return PodFleetExecutor()


def start_workers(kind: str, tmp: Path) -> WorkerPools | None:
    """podfleet's workers, children of this interpreter (their CPU is the executor's), on the
    environment the parent's fleet gave it."""
    if kind != "podfleet":
        return None
    from podfleet.local.fleet import WorkerPools

    pools = WorkerPools({}, tmp, inherit_env=True)
    for _ in range(PODFLEET_WORKERS):
        pools.start(1, PODFLEET_THREADS)
    return pools


def start_executor(kind: str, job_id: int, tmp: Path) -> tuple[Any, WorkerPools | None]:
    """A started executor of ``kind`` for the job, and podfleet's workers (for podfleet),
    settled: what the scheduler has once it runs."""
    workers = start_workers(kind, tmp)
    executor = make_executor(kind)
    executor.job_id = job_id
    executor.start()
    wait_settled(workers.processes if workers else [])
    return executor, workers


def stop_executor(executor: Any, workers: WorkerPools | None) -> None:
    """End the executor (terminate it when it still runs) and stop the workers."""
    executor.end() if not executor.running else executor.terminate()
    if workers is not None:
        workers.stop()


def wait_settled(procs: list[subprocess.Popen[bytes]], timeout: float = 30.0) -> None:
    """Wait until the worker processes have imported and are idle (their start is not
    part of the run's CPU, as the KubernetesExecutor's start() is not)."""
    import psutil

    if not procs:
        return
    deadline = time.monotonic() + timeout
    last = -1.0
    while time.monotonic() < deadline:
        total = 0.0
        for p in procs:
            for proc in [psutil.Process(p.pid), *psutil.Process(p.pid).children(recursive=True)]:
                with_times = proc.cpu_times()
                total += with_times.user + with_times.system
        if last >= 0 and total - last < 0.03 and total > 0.5:
            return
        last = total
        time.sleep(0.5)


def child(kind: str, spec_file: str) -> None:
    spec = json.loads(Path(spec_file).read_text())
    n, interval = int(spec["tasks"]), float(spec["loop_interval"])
    tmp = Path(spec_file).parent
    logging.basicConfig(level=logging.WARNING)

    from airflow.executors.workloads import ExecuteTask

    from podfleet.airflow.compat import ti_key  # the scheduler's key for a TI, per version
    from podfleet.local.stats import percentile

    job_id = scheduler_job()
    tis = queue_tries(DAG_ID, new_dag_run(DAG_ID, kind), job_id)
    assert len(tis) == n, f"{len(tis)} task instances, expected {n}"
    workloads = [ExecuteTask.make(ti) for ti in tis]

    executor, workers = start_executor(kind, job_id, tmp)
    if spec.get("scheduler_core"):
        _yield_the_cores(spec, workers)
    cpu = TreeCpu()
    cpu.mark()
    redis_before = process_cpu(spec.get("redis_pid")) if kind == "podfleet" else None

    durations: list[float] = []
    cpu_durations: list[float] = []
    others_cpu: list[float] = []
    finished_at: dict[Any, float] = {}
    final_states: dict[str, int] = {}
    keys = set()
    t0 = time.monotonic()
    # The scheduler thread's CPU in the executor's calls (queue_workload, heartbeat,
    # get_event_buffer): what the scheduler loop pays; background threads are not counted.
    scheduler_cpu = 0.0
    c0 = time.thread_time()
    for workload in workloads:
        executor.queue_workload(workload, session=None)
        keys.add(ti_key(executor, workload.ti))
    scheduler_cpu += time.thread_time() - c0
    deadline = t0 + float(spec["timeout"])
    try:
        while len(finished_at) < n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(finished_at)}/{n} finished after {spec['timeout']}s")
            h0, c0, p0 = time.monotonic(), time.thread_time(), time.process_time()
            executor.heartbeat()
            durations.append(time.monotonic() - h0)
            cpu_durations.append(time.thread_time() - c0)
            # The process's other threads' CPU meanwhile: most of it held the GIL.
            others_cpu.append(max(0.0, time.process_time() - p0 - cpu_durations[-1]))
            now = time.monotonic()
            events = executor.get_event_buffer()
            scheduler_cpu += time.thread_time() - c0
            for key, (state, _info) in events.items():
                if key in keys and key not in executor.running and key not in finished_at:
                    finished_at[key] = now - t0
                    final_states[str(state)] = final_states.get(str(state), 0) + 1
            time.sleep(max(0.0, interval - (time.monotonic() - h0)))
        cpu_s, processes, own = cpu.since()
        redis_after = process_cpu(spec.get("redis_pid")) if kind == "podfleet" else None
    finally:
        stop_executor(executor, workers)
    result = {
        "tasks": n,
        "all_finished_s": round(max(finished_at.values()), 2),
        "first_finished_s": round(min(finished_at.values()), 2),
        "heartbeats": len(durations),
        "heartbeat_mean_ms": round(statistics.fmean(durations) * 1000, 2),
        "heartbeat_max_ms": round(max(durations) * 1000, 2),
        "heartbeat_first_ms": round(durations[0] * 1000, 2),
        "heartbeat_p50_ms": round(percentile(durations, 50) * 1000, 2),
        "heartbeat_p99_ms": round(percentile(durations, 99) * 1000, 2),
        "heartbeat_cpu_p99_ms": round(percentile(cpu_durations, 99) * 1000, 2),
        "heartbeat_cpu_max_ms": round(max(cpu_durations) * 1000, 2),
        **_slowest_split(durations, cpu_durations, others_cpu),
        "scheduler_cpu_ms_per_task": round(scheduler_cpu / n * 1000, 3),
        "cpu_s": round(cpu_s, 2),
        "cpu_self_s": round(own, 2),
        "processes": processes,
        "cpu_s_per_pod": round(cpu_s / n, 5),
        "final_states": final_states,
    }
    if redis_before is not None and redis_after is not None:
        result["redis_cpu_s"] = round(redis_after - redis_before, 2)
        result["redis_cpu_s_per_pod"] = round((redis_after - redis_before) / n, 5)
    Path(spec["out"]).write_text(json.dumps(result))


def add_driver_arguments(parser: argparse.ArgumentParser, loop: str) -> None:
    """The options of both Airflow benches' drivers: the pods' simulated run time, the loop's
    interval, one executor alone, and the hidden ``--child`` the parent starts each
    executor's interpreter with."""
    parser.add_argument("--run-time", type=float, default=1.0,
                        help="simulated seconds each pod runs")
    parser.add_argument("--loop-interval", type=float, default=0.1,
                        help=f"seconds between {loop}")
    parser.add_argument("--only", choices=("kubernetes", "podfleet"),
                        help="run this executor alone (no comparison)")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "SPEC"), help=argparse.SUPPRESS)


def run_parent_or_child(args: argparse.Namespace, parent: Callable[[argparse.Namespace], None],
                        child: Callable[[str, str], None], script: str | None = None) -> None:
    """With Airflow importable (re-executing ``script`` otherwise), run as one executor's
    interpreter (``--child``) or as the parent that starts one per executor."""
    ensure_airflow(script)
    if args.child:
        child(*args.child)
        return
    args.executors = [args.only] if args.only else ["kubernetes", "podfleet"]
    parent(args)


def _yield_the_cores(spec: dict[str, Any], workers: WorkerPools | None) -> None:
    """Lower every other process of the run to nice 10 (the simulator, Redis, podfleet's
    worker pools, each pool a process group), so the scheduler's thread is not left waiting
    for a core they hold."""
    for pid in (spec.get("simulator_pid"), spec.get("redis_pid")):
        if pid:
            os.setpriority(os.PRIO_PROCESS, int(pid), 10)
    for pool in workers.processes if workers is not None else []:
        os.setpriority(os.PRIO_PGRP, pool.pid, 10)


def _slowest_split(walls: list[float], own: list[float], others: list[float]
                   ) -> dict[str, float]:
    """Where the calls at p99 and above spent their wall time, on average: the calling
    thread's CPU, the other threads' CPU meanwhile (they held the GIL), and the rest."""
    from podfleet.local.stats import percentile

    cut = percentile(walls, 99)
    slow = [i for i, wall in enumerate(walls) if wall >= cut]
    if not slow:
        return {}

    def mean_ms(values: list[float]) -> float:
        return round(statistics.fmean(values[i] for i in slow) * 1000, 2)

    wall_ms, own_ms, others_ms = mean_ms(walls), mean_ms(own), mean_ms(others)
    return {"slowest_calls": len(slow), "slowest_wall_ms": wall_ms, "slowest_own_ms": own_ms,
            "slowest_others_ms": others_ms,
            "slowest_rest_ms": round(max(0.0, wall_ms - own_ms - others_ms), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 tasks per executor")
    parser.add_argument("--tasks", type=int, default=0, help="tasks per executor")
    parser.add_argument("--timeout", type=float, default=0.0,
                        help="seconds one executor may take (default 60 quick, 600 full)")
    parser.add_argument("--ke-batch", type=int, default=KE_BATCH,
                        help="KubernetesExecutor: worker_pods_creation_batch_size (pods "
                             "created per heartbeat)")
    parser.add_argument("--ke-async", action="store_true",
                        help="KubernetesExecutor: async_pod_creation=True (a batch's creates "
                             "concurrently; default off, as in Airflow)")
    parser.add_argument("--scheduler-core", action="store_true",
                        help="run the workers, the simulator and Redis at nice 10, so the "
                             "scheduler's thread has a core when it wants one, as on a "
                             "machine of its own")
    parser.add_argument("--keep-logs", metavar="DIR",
                        help="copy the executors' and podfleet workers' logs here")
    add_driver_arguments(parser, "heartbeat() calls (a busy scheduler loop)")
    args = parser.parse_args()
    args.timeout = args.timeout or (60.0 if args.quick else 600.0)
    run_parent_or_child(args, parent, child)


if __name__ == "__main__":
    main()
