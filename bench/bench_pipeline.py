"""Whole-pipeline benchmarks: event-to-buffer latency, watcher takeover, executor memory.

    python bench/bench_pipeline.py            full run (about two minutes)
    python bench/bench_pipeline.py --quick    smoke (under 30 s)

Everything is real, a local fleet (``podfleet.local.fleet.LocalFleet``): the simulator in its
own process, a private Redis, PostgreSQL (a fresh database on ``TEST_POSTGRES_URL``,
default the machine's; SQLite when it cannot be reached), ``podfleet worker`` processes, and
the Executor in this process.

* **Event-to-buffer latency**: the executor submits tasks whose pods never start on their own
  (the simulated kubelet's start delay is an hour). Once every pod is bound, a *driver*
  process (a separate interpreter, so it shares no GIL with the executor) writes each pod's
  status through the status subresource - Running, then Succeeded ``--gap`` seconds later - at
  ``--rate`` writes/s in total, timestamping each write. This process runs the scheduler loop
  (``sync()`` then ``get_event_buffer()``, back to back) and timestamps the moment each task's
  RUNNING and SUCCESS come out of the buffer. Reported: p50/p99/max from the write's
  acknowledgement (and from the moment it was sent), over every write.
* **Watcher takeover**: two worker hosts run the watcher supervisor; the worker holding the
  lease is SIGKILLed (its whole process group); reported is the time until the other holds it,
  with the lease time and the supervisor's polling interval.
* **Executor memory per tracked task**: a fresh interpreter builds an Executor, then submits N
  tasks (no worker runs, so they stay queued) and applies RUNNING events for half of them, as
  the watcher would publish them. Reported: the RSS after minus before, divided by N, at
  steady state (after ``gc.collect()``) and at peak (``ru_maxrss``), and with the scheduler's
  ``running`` and ``queued_tasks`` views held.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import resource
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis

from podfleet.local.fleet import LocalFleet, WorkerPools
from podfleet.local.postgres import PostgresUnavailable, ScratchDatabase
from podfleet.local.stats import percentile
from podfleet.local.waiting import wait_for

POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
SIGNING_KEY = "bench-pipeline-signing-key-0123456789"
NAMESPACE = "default"
DRIVER_THREADS = 8


# --- services -------------------------------------------------------------------------------

@contextlib.contextmanager
def database() -> Iterator[str | None]:
    """A fresh PostgreSQL database (the fleet migrates it; dropped afterwards), else None: the
    fleet's own SQLite file."""
    try:
        scratch = ScratchDatabase(POSTGRES_ADMIN_URL, prefix="podfleet_bench").create()
    except PostgresUnavailable:
        print("database: SQLite (PostgreSQL not reachable)", flush=True)
        yield None
        return
    try:
        print("database: PostgreSQL", flush=True)
        yield scratch.url
    finally:
        scratch.drop()


# --- event-to-buffer latency ----------------------------------------------------------------

def drive(spec_file: str, out_file: str) -> None:
    """The driver process: write pod statuses on schedule, record when each write happened."""
    from podfleet.kube.client import MERGE_PATCH, KubeClient

    spec = json.loads(Path(spec_file).read_text())
    kube = KubeClient.from_config(kubeconfig=spec["kubeconfig"])
    rate, gap = float(spec["rate"]), float(spec["gap"])
    pods: list[list[str]] = spec["pods"]
    step = 2.0 / rate  # two writes per pod
    start = time.time() + 0.5
    schedule = sorted([(start + i * step, name, container, "Running")
                       for i, (name, container) in enumerate(pods)]
                      + [(start + i * step + gap, name, container, "Succeeded")
                         for i, (name, container) in enumerate(pods)])
    lock = threading.Lock()
    position = [0]
    records: list[tuple[str, str, float, float]] = []

    def body(phase: str, container: str, stamp: str) -> dict[str, Any]:
        if phase == "Running":
            state: dict[str, Any] = {"running": {"startedAt": stamp}}
        else:
            state = {"terminated": {"exitCode": 0, "reason": "Completed",
                                    "startedAt": stamp, "finishedAt": stamp}}
        return {"status": {"phase": phase, "containerStatuses": [
            {"name": container, "ready": phase == "Running", "restartCount": 0,
             "image": "busybox", "imageID": "", "started": phase == "Running",
             "state": state}]}}

    def run() -> None:
        while True:
            with lock:
                if position[0] >= len(schedule):
                    return
                at, name, container, phase = schedule[position[0]]
                position[0] += 1
            delay = at - time.time()
            if delay > 0:
                time.sleep(delay)
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            sent = time.time()
            kube.request("PATCH", kube.pods_path(NAMESPACE, name) + "/status",
                         body=body(phase, container, stamp), content_type=MERGE_PATCH)
            done = time.time()
            with lock:
                records.append((name, phase, sent, done))

    # When each task event reached the executor's stream: the entry id is the XADD's time in
    # ms (read as the entries arrive; the executor deletes them once applied).
    published: list[tuple[str, str, int]] = []
    done_writing = threading.Event()

    def observe() -> None:
        client = redis.Redis.from_url(spec["redis_url"])
        last = "$"
        while True:
            reply: Any = client.xread({spec["stream"]: last}, block=200, count=1000)
            for _stream, entries in reply or []:
                for entry_id, fields in entries:
                    last = entry_id.decode()
                    published.append((fields.get(b"launch_id", b"").decode(),
                                      fields.get(b"state", b"").decode(),
                                      int(last.split("-")[0])))
            if done_writing.is_set():
                break
        client.close()

    observer = threading.Thread(target=observe)
    observer.start()
    threads = [threading.Thread(target=run) for _ in range(DRIVER_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    time.sleep(2.0)
    done_writing.set()
    observer.join()
    kube.close()
    Path(out_file).write_text(json.dumps({"records": records, "published": published}))


def bench_latency(env: dict[str, str], tmp: Path, pods: int, rate: float,
                  gap: float, profile: bool = False) -> dict[str, float]:
    from podfleet.contracts.naming import MANAGED_SELECTOR
    from podfleet.contracts.states import TaskState
    from podfleet.executor import Executor, TaskSubmission
    from podfleet.kube.client import KubeClient
    from podfleet.settings import Settings

    executor = Executor(Settings.from_env({**env, "PODFLEET_EXECUTOR_ID": "bench-latency"}))
    kube = KubeClient.from_config(kubeconfig=env["PODFLEET_KUBECONFIG"])
    try:
        executor.start()
        run_id = f"run-{uuid.uuid4().hex[:6]}"
        launch_ids = executor.submit_many([
            TaskSubmission(("bench_pipeline", f"t{i}", run_id, -1, 1), ["true"])
            for i in range(pods)])
        key_of_launch = {launch: ("bench_pipeline", f"t{i}", run_id, -1, 1)
                         for i, launch in enumerate(launch_ids)}

        def all_bound() -> list[dict[str, Any]] | None:
            executor.sync()
            executor.get_event_buffer()
            listed = kube.list_pods(NAMESPACE, label_selector=MANAGED_SELECTOR).items
            bound = [p for p in listed if p["spec"].get("nodeName")
                     and p["metadata"]["labels"].get("podfleet.io/launch-id") in key_of_launch]
            return bound if len(bound) == pods else None

        began = time.monotonic()
        bound = wait_for(all_bound, 300, "every pod to be created and bound", interval=0.2)
        launched_s = time.monotonic() - began
        # Let the LAUNCHED events drain so the measured window holds only phase changes.
        for _ in range(20):
            executor.sync()
            executor.get_event_buffer()
            time.sleep(0.05)
        name_to_key: dict[str, Any] = {}
        launch_of_name: dict[str, str] = {}
        spec_pods = []
        for pod in bound:
            launch = pod["metadata"]["labels"]["podfleet.io/launch-id"]
            name_to_key[pod["metadata"]["name"]] = key_of_launch[launch]
            launch_of_name[pod["metadata"]["name"]] = launch
            spec_pods.append([pod["metadata"]["name"], pod["spec"]["containers"][0]["name"]])
        spec_file, out_file = tmp / "driver-spec.json", tmp / "driver-out.json"
        spec_file.write_text(json.dumps({
            "kubeconfig": env["PODFLEET_KUBECONFIG"], "rate": rate, "gap": gap,
            "pods": spec_pods, "redis_url": env["PODFLEET_REDIS_URL"],
            "stream": executor.keys.events(executor.executor_id)}))
        driver = subprocess.Popen([sys.executable, __file__, "--driver", str(spec_file),
                                   str(out_file)], env={**os.environ, **env})
        seen: dict[tuple[Any, str], float] = {}
        deadline = time.monotonic() + 2 * pods / rate + gap + 30
        syncs = 0
        succeeded = 0
        sync_ms: list[float] = []
        profiler = None
        if profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        while succeeded < pods and time.monotonic() < deadline:
            began_sync = time.perf_counter()
            executor.sync()
            now = time.time()
            sync_ms.append((time.perf_counter() - began_sync) * 1000)
            syncs += 1
            for key, (state, _reason) in executor.get_event_buffer().items():
                task = tuple(key.as_list())
                if state is TaskState.SUCCESS and (task, "success") not in seen:
                    succeeded += 1
                    seen[(task, "success")] = now
                    # RUNNING and SUCCESS applied in one sync leave only SUCCESS in the
                    # buffer (it keeps a task's latest state): both arrived now.
                    seen.setdefault((task, "running"), now)
                elif state is TaskState.RUNNING:
                    seen.setdefault((task, "running"), now)
            if driver.poll() not in (None, 0):
                raise RuntimeError(f"the driver failed with {driver.returncode}")
            time.sleep(0.001)
        if profiler is not None:
            import pstats

            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
        driver.wait(60)
        result = json.loads(out_file.read_text())
    finally:
        with contextlib.suppress(Exception):
            executor.terminate()
        kube.close()
    name_of_launch = {launch: name for name, launch in launch_of_name.items()}
    xadd_ms = {(name_of_launch.get(launch), state): ms
               for launch, state, ms in result["published"] if launch in name_of_launch}
    from_ack: list[float] = []
    from_sent: list[float] = []
    to_stream: list[float] = []
    for name, phase, sent, done in result["records"]:
        wanted = "running" if phase == "Running" else "success"
        got = seen.get((tuple(name_to_key[name]), wanted))
        if got is None:
            continue
        from_ack.append((got - done) * 1000)
        from_sent.append((got - sent) * 1000)
        if (name, wanted) in xadd_ms:
            to_stream.append(xadd_ms[(name, wanted)] - done * 1000)
    sent_times = [record[2] for record in result["records"]]
    span = max(sent_times) - min(sent_times)
    return {"writes": len(result["records"]), "matched": len(from_ack),
            "missing": 2 * pods - len(from_ack),
            "achieved_rate": len(result["records"]) / span if span else 0.0,
            "p50_ms": percentile(from_ack, 50), "p99_ms": percentile(from_ack, 99),
            "max_ms": max(from_ack), "p50_sent_ms": percentile(from_sent, 50),
            "p99_sent_ms": percentile(from_sent, 99),
            "stream_seen": len(to_stream),
            "p50_stream_ms": percentile(to_stream, 50),
            "p99_stream_ms": percentile(to_stream, 99),
            "launch_s": launched_s, "syncs": syncs,
            "sync_p50_ms": percentile(sync_ms, 50), "sync_max_ms": max(sync_ms)}


# --- watcher takeover -----------------------------------------------------------------------

def bench_takeover(env: dict[str, str], workers: WorkerPools, rounds: int) -> list[float]:
    from podfleet.contracts.redis_keys import RedisKeys
    from podfleet.workers.watcher.lease import current_holder

    client = redis.Redis.from_url(env["PODFLEET_REDIS_URL"])
    keys = RedisKeys(env["PODFLEET_REDIS_PREFIX"])
    times: list[float] = []
    try:
        while len(workers.alive()) < 2:
            workers.start(threads=2)
        for _ in range(rounds):
            first = wait_for(lambda: current_holder(client, keys), 60, "a watcher")
            lease = float(env["PODFLEET_WATCHER_LEASE_SECONDS"])
            time.sleep(min(1.0, lease / 2))  # it has renewed at least once, as in real life
            # Both workers must be booted (their supervisors polling) before the kill.
            wait_for(lambda: len(list(workers.directory.glob("worker-*.log"))) >= 2, 30,
                     "two workers")
            time.sleep(2.0)
            workers.kill(workers.owner_of(int(first.holder.split(":")[1])))
            killed = time.monotonic()
            wait_for(lambda old=first.token: (h := current_holder(client, keys)) is not None
                 and h.token != old, lease + 60, "a takeover", interval=0.005)
            times.append(time.monotonic() - killed)
            workers.start(threads=2)  # a replacement, so the next round has two again
    finally:
        client.close()
    return times


# --- executor memory ------------------------------------------------------------------------

def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory_child(tasks: int) -> None:
    """In a fresh interpreter: RSS of an Executor before and after it tracks ``tasks``."""
    from podfleet.contracts.events import EventKind, EventSource, TaskEvent, publish_events
    from podfleet.contracts.naming import pod_name
    from podfleet.contracts.states import TaskState
    from podfleet.executor import Executor, TaskSubmission
    from podfleet.settings import Settings

    executor = Executor(Settings.from_env())
    executor.start()
    executor.sync()
    gc.collect()
    before = rss_bytes()
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    run_id = f"run-{uuid.uuid4().hex[:6]}"
    chunk = 5000
    launched: list[tuple[Any, str]] = []
    for start in range(0, tasks, chunk):
        subs = [TaskSubmission(("bench_memory", f"t{i}", run_id, -1, 1), ["true"])
                for i in range(start, min(tasks, start + chunk))]
        ids = executor.submit_many(subs)
        launched.extend((sub.key, launch) for sub, launch in zip(subs, ids, strict=True))
    # Half the tasks run: their RUNNING events arrive as the watcher would publish them.
    from podfleet.contracts.keys import TaskKey

    events = [TaskEvent(key=TaskKey.coerce(key), launch_id=launch,
                        executor_id=executor.executor_id, kind=EventKind.STATE,
                        source=EventSource.WATCHER, state=TaskState.RUNNING,
                        pod_name=pod_name(TaskKey.coerce(key), launch), namespace=NAMESPACE)
              for key, launch in launched[: tasks // 2]]
    for start in range(0, len(events), 5000):
        publish_events(executor.redis, executor.keys, events[start:start + 5000])
    del events, launched
    applied = 0
    while applied < tasks // 2:
        applied += executor.sync()
    executor.get_event_buffer()
    gc.collect()
    after = rss_bytes()
    counts = executor.slot_counts()
    running, queued = executor.running, executor.queued_tasks
    with_views = rss_bytes()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"tasks": tasks, "before": before, "after": after,
                      "with_views": with_views, "peak": peak, "peak_before": peak_before,
                      "running": counts.running, "queued": counts.waiting + counts.sent,
                      "views": len(running) + len(queued)}))
    executor.terminate()


def bench_memory(env: dict[str, str], tasks: int) -> dict[str, float]:
    child_env = {**os.environ, **env, "PODFLEET_EXECUTOR_ID": "bench-memory",
                 "PODFLEET_REDIS_PREFIX": env["PODFLEET_REDIS_PREFIX"] + "-memory"}
    out = subprocess.run([sys.executable, __file__, "--memory-child", str(tasks)],
                         env=child_env, check=True, capture_output=True, text=True)
    data = json.loads(out.stdout.strip().splitlines()[-1])
    if data["running"] != tasks // 2 or data["queued"] != tasks - tasks // 2:
        raise RuntimeError(f"the executor did not track every task: {data}")
    return {"tasks": tasks,
            "steady_bytes_per_task": (data["after"] - data["before"]) / tasks,
            "views_bytes_per_task": (data["with_views"] - data["before"]) / tasks,
            "peak_bytes_per_task": (data["peak"] - data["before"]) / tasks,
            "rss_before_mb": data["before"] / 2**20, "rss_after_mb": data["after"] / 2**20}


# --- main -----------------------------------------------------------------------------------

def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--driver":
        drive(sys.argv[2], sys.argv[3])
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "--memory-child":
        memory_child(int(sys.argv[2]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run, under 30 s (CI)")
    parser.add_argument("--rate", type=float, default=1000.0,
                        help="pod status writes (= pod events) per second (default 1000)")
    parser.add_argument("--pods", type=int, default=None,
                        help="pods in the latency run (2 events each)")
    parser.add_argument("--gap", type=float, default=None,
                        help="seconds between a pod's Running and Succeeded writes")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile the executor's sync loop during the latency run")
    parser.add_argument("--lease", type=float, default=None, help="watcher lease seconds")
    parser.add_argument("--rounds", type=int, default=None, help="takeover rounds")
    parser.add_argument("--tasks", type=int, default=None,
                        help="tasks the executor tracks in the memory run")
    args = parser.parse_args()
    pods = args.pods or (150 if args.quick else 3000)
    gap = args.gap or (0.3 if args.quick else 1.0)
    lease = args.lease or (2.0 if args.quick else 5.0)
    rounds = args.rounds or (1 if args.quick else 3)
    tasks = args.tasks or (2_000 if args.quick else 50_000)

    from podfleet.simulator.cluster.config import ClusterConfig
    from podfleet.simulator.config import SimulatorConfig

    with contextlib.ExitStack() as stack:
        database_url = stack.enter_context(database())
        # Pods are bound at once and then wait: only the driver changes their phase.
        fleet = stack.enter_context(LocalFleet(
            simulator=SimulatorConfig(
                default_termination_grace_period_s=1,
                cluster=ClusterConfig(nodes=50, node_pods=max(110, pods // 40 + 10),
                                      schedule_delay_s=0.01, container_start_delay_s=3600.0,
                                      default_run_time_s=3600.0)),
            database_url=database_url, redis_prefix=f"bench-{uuid.uuid4().hex[:6]}",
            signing_key=SIGNING_KEY, namespace=NAMESPACE, env={
                "PODFLEET_PARALLELISM": "0",
                "PODFLEET_LAUNCH_RATE": "0",
                "PODFLEET_DELETE_POLICY": "never",
                "PODFLEET_WATCHER_LEASE_SECONDS": str(lease),
                "PODFLEET_QUEUED_TIMEOUT_SECONDS": "0",
            }))
        env, tmp, workers = fleet.env, fleet.workdir, fleet.workers
        workers.start(threads=8)

        lat = bench_latency(env, tmp, pods, args.rate, gap, args.profile)
        print(f"event-to-buffer latency at {lat['achieved_rate']:,.0f} pod events/s "
              f"({lat['writes']} status writes, {lat['matched']} seen in the buffer, "
              f"{lat['missing']} missing): from the write's ack p50 {lat['p50_ms']:.1f} ms, "
              f"p99 {lat['p99_ms']:.1f} ms, max {lat['max_ms']:.1f} ms; from the write's "
              f"send p50 {lat['p50_sent_ms']:.1f} ms, p99 {lat['p99_sent_ms']:.1f} ms "
              f"({lat['syncs']} syncs, each p50 {lat['sync_p50_ms']:.1f} ms, max "
              f"{lat['sync_max_ms']:.0f} ms; launching {pods} pods took {lat['launch_s']:.1f}s)",
              flush=True)
        print(f"  of which write ack -> event in the executor's stream (watcher): p50 "
              f"{lat['p50_stream_ms']:.0f} ms, p99 {lat['p99_stream_ms']:.0f} ms "
              f"({lat['stream_seen']} entries observed; ms resolution)", flush=True)
        if lat["missing"]:
            print("FAILED: some phase changes never reached the event buffer", file=sys.stderr)
            return 1

        takeovers = bench_takeover(env, workers, rounds)
        print(f"watcher takeover after SIGKILL of the lease holder's worker: "
              f"{', '.join(f'{t:.2f}s' for t in takeovers)} (lease {lease:g}s, supervisor "
              f"polls every {min(2.0, max(0.1, lease / 5)):g}s)", flush=True)
        workers.stop()

        mem = bench_memory(env, tasks)
        print(f"executor memory tracking {mem['tasks']:,} tasks (half running, half queued): "
              f"{mem['steady_bytes_per_task']:,.0f} B/task steady "
              f"(RSS {mem['rss_before_mb']:.0f} -> {mem['rss_after_mb']:.0f} MiB), "
              f"{mem['views_bytes_per_task']:,.0f} B/task with running/queued_tasks views held, "
              f"peak {mem['peak_bytes_per_task']:,.0f} B/task while submitting", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
