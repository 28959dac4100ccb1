"""Launch-path benchmark: signed launch messages in Redis → `podfleet worker` → simulator pods.

Three measurements, each against a fresh private Redis and the simulator in its own process:

1. **capacity** — the pool's pod creates/s end to end with the rate limit off: a burst of
   tasks is enqueued at once and the clock runs from the first enqueue to the last LAUNCHED
   event in the executor's stream;
2. **tracking** — with ``PODFLEET_LAUNCH_RATE`` set, the creates/s the pool actually sends
   (the API-side send times the launcher records), which should be within 5 % of the limit;
3. **latency** — launch latency (queued_at → the API accepted the pod) p50/p99 while tasks
   arrive steadily at half the measured capacity.

``--watch`` measures a pod's whole life in the workers instead: the pods are scheduled, run for
``--run-time`` seconds and succeed, a watcher publishes RUNNING and SUCCESS, archives each
pod's log and deletes it. The launchers (``podfleet worker --no-watcher``) and the watcher (a
one-process pool of its own that consumes no launch queue) are separate processes, so the CPU
per pod is reported for each, and the run ends when every pod is gone.

``--profile`` samples the worker processes with py-spy during the capacity run and prints the
top functions, to say where the time goes. ``--quick`` is a CI smoke of a few seconds (with a
short ``--watch`` run after it).

    .venv/bin/python bench/bench_launch.py [--quick] [--processes 2 --threads 8] [--profile]
    .venv/bin/python bench/bench_launch.py --watch --capacity-only --tasks 2000 [--profile]
        [--no-log-archive]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from podfleet.broker import enqueue_envelopes, make_broker
from podfleet.contracts.events import TaskEvent
from podfleet.contracts.keys import TaskKey
from podfleet.contracts.messages import LaunchBatch, LaunchRequest, new_launch_id
from podfleet.contracts.redis_keys import RedisKeys
from podfleet.contracts.signing import MessageSigner
from podfleet.contracts.states import TaskState
from podfleet.kube.client import KubeClient
from podfleet.local.fleet import LocalFleet
from podfleet.local.stats import percentile
from podfleet.local.waiting import wait_for
from podfleet.settings import Settings
from podfleet.simulator.cluster.config import ClusterConfig
from podfleet.simulator.config import SimulatorConfig
from podfleet.simulator.server import RunningSimulator, start_simulator

KEY = "bench-launch-signing-key-0123456789"
# The watcher's pool consumes only this task queue, to which nothing is sent.
IDLE_QUEUE = "bench-idle"


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of ``pids`` so far (Linux /proc)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def group_pids(pgid: int) -> list[int]:
    """Every live process in process group ``pgid`` (the worker parent and its children)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.getpgid(int(entry.name)) == pgid:
                    pids.append(int(entry.name))
    return pids


class Bench:
    def __init__(self, args: argparse.Namespace, sim: RunningSimulator, workdir: Path) -> None:
        self.args = args
        self.sim = sim
        self.workdir = workdir
        self.signer = MessageSigner(KEY.encode())
        self.run = 0
        self.queued_at: dict[str, float] = {}
        self.started = 0.0
        self.cpu: dict[str, float] = {}

    def fleet(self, rate: float) -> LocalFleet:
        """A fleet of its own for one measurement (a fresh Redis) on the shared simulator;
        no executor runs, so no DB."""
        env = {"PODFLEET_EXECUTOR_ID": "bench", "PODFLEET_LAUNCH_RATE": str(rate),
               "PODFLEET_BATCH_SIZE": str(self.args.batch_size),
               # Launchers and watcher must agree on the task queues; the launch route of
               # the bench's tasks (no queue) stays the default one.
               "PODFLEET_QUEUE_RATES": f"{IDLE_QUEUE}=1",
               # No watcher runs here (it measures launches), so nothing would see pods
               # start and make room under the pending cap.
               "PODFLEET_MAX_PENDING_PODS": "0"}
        if rate:
            env["PODFLEET_LAUNCH_BURST"] = str(max(1, int(rate / 20)))
        if self.args.no_log_archive:
            env["PODFLEET_LOG_ARCHIVE"] = "off"
        return LocalFleet(workdir=self.workdir / f"run-{self.run}", simulator=self.sim,
                          migrate=False, signing_key=KEY, env=env)

    def phase(self, tasks: int, *, rate: float = 0.0, arrival_rate: float = 0.0,
              profile: bool = False) -> list[TaskEvent]:
        """Run one measurement with its own Redis and workers; return the LAUNCHED events."""
        self.run += 1
        with self.fleet(rate) as fleet:
            assert fleet.redis_server is not None and fleet.redis_server.pid is not None
            settings = fleet.settings()
            broker = make_broker(settings)
            client = redis.Redis.from_url(fleet.redis_url)
            worker = fleet.workers.start(self.args.processes, self.args.threads, watcher=False)
            self.worker = worker
            watcher = (fleet.workers.start(1, 2, queues=[IDLE_QUEUE]) if self.args.watch
                       else None)
            try:
                self._wait_ready(client, broker, settings)
                spy = self._start_profile(worker.pid) if profile else None
                watcher_spy = (self._start_profile(watcher.pid, "-watcher")
                               if profile and watcher is not None else None)
                parties = {"simulator": [self.sim.process.pid],  # type: ignore[attr-defined]
                           "workers": group_pids(worker.pid),
                           "redis": [fleet.redis_server.pid],
                           "bench (enqueue + collect)": [os.getpid()]}
                if watcher is not None:
                    parties = {"simulator": parties["simulator"],
                               "launchers": parties["workers"],
                               "watcher": group_pids(watcher.pid),
                               "redis": parties["redis"],
                               "bench (enqueue + collect)": parties["bench (enqueue + collect)"]}
                before = {name: cpu_seconds(pids) for name, pids in parties.items()}
                self.started = time.time()
                if arrival_rate:
                    self._send_steadily(broker, settings, tasks, arrival_rate)
                else:
                    self._send(broker, settings, self._requests(tasks))
                events = self._collect(client, settings, tasks)
                if watcher is not None:
                    self._wait_gone(fleet)
                elapsed = time.time() - self.started
                self.cpu = {name: cpu_seconds(pids) - before[name]
                            for name, pids in parties.items()}
                self.cpu["wall"] = elapsed
                if spy is not None:
                    self._stop_profile(spy)
                if watcher_spy is not None:
                    self._stop_profile(watcher_spy, "-watcher")
                return [e for e in events if e.state is TaskState.LAUNCHED]
            finally:
                fleet.workers.stop()
                client.close()
                broker.client.close()

    def _requests(self, n: int) -> list[LaunchRequest]:
        now = time.time()
        requests = [LaunchRequest(key=TaskKey("bench", f"t{i}", f"r{self.run}", -1, 1),
                                  launch_id=new_launch_id(), command=("true",),
                                  executor_id="bench", namespace="default", queued_at=now)
                    for i in range(n)]
        self.queued_at.update((r.launch_id, now) for r in requests)
        return requests

    def _send(self, broker: Any, settings: Settings, requests: list[LaunchRequest]) -> None:
        size = self.args.batch_size
        envelopes = [LaunchBatch(requests=tuple(requests[i:i + size])).seal(self.signer)
                     for i in range(0, len(requests), size)]
        enqueue_envelopes(broker, settings.launch.queue, envelopes)

    def _send_steadily(self, broker: Any, settings: Settings, tasks: int,
                       arrival_rate: float) -> None:
        """Tasks arrive at ``arrival_rate``/s in small batches every 20 ms."""
        tick = 0.02
        per_tick = max(1.0, arrival_rate * tick)
        sent = 0
        start = time.monotonic()
        while sent < tasks:
            due = min(tasks, int((time.monotonic() - start) / tick * per_tick) + 1)
            if due > sent:
                batch = self._requests(due - sent)
                self._send(broker, settings, batch)
                sent = due
            time.sleep(tick / 2)

    def _wait_ready(self, client: redis.Redis, broker: Any, settings: Settings) -> None:
        """One warm-up task, so worker start-up is not in the measurement."""
        self._send(broker, settings, self._requests(1))
        self._collect(client, settings, 1, quiet=True)
        client.delete(RedisKeys(settings.redis.prefix).events("bench"))

    def _wait_gone(self, fleet: LocalFleet) -> None:
        """Until the watcher has deleted every pod (the warm-up's too)."""
        kube = KubeClient.from_config(kubeconfig=str(fleet.kubeconfig))
        try:
            wait_for(lambda: not kube.request("GET", kube.pods_path("default"),
                                              query={"limit": 1})["items"],
                     timeout=300, interval=0.5, what="every pod deleted")
        finally:
            kube.close()

    def _collect(self, client: redis.Redis, settings: Settings, count: int, *,
                 quiet: bool = False) -> list[TaskEvent]:
        """The events of ``count`` tasks: LAUNCHED each, and with ``--watch`` RUNNING and
        SUCCESS too."""
        stream = RedisKeys(settings.redis.prefix).events("bench")
        deadline = time.monotonic() + 300
        per_task = 3 if self.args.watch else 1
        count *= per_task
        while client.xlen(stream) < count:
            worker = getattr(self, "worker", None)
            if worker is not None and worker.poll() is not None:
                raise RuntimeError(f"the worker exited with {worker.returncode}; see "
                                   f"{self.workdir}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {client.xlen(stream)}/{count} events; see "
                                   f"{self.workdir}")
            time.sleep(0.01)
        events = [TaskEvent.from_fields(f) for _, f in client.xrange(stream)]
        if not quiet:
            expected = ({TaskState.LAUNCHED, TaskState.RUNNING, TaskState.SUCCESS}
                        if self.args.watch else {TaskState.LAUNCHED})
            failed = [e for e in events if e.state not in expected]
            if failed:
                print(f"  ! {len(failed)} tasks not launched: {failed[0].reason}")
        return events

    def _profile_path(self, suffix: str) -> Path:
        out: Path = self.args.profile_out or self.workdir / "profile.txt"
        return out.with_name(out.stem + suffix + out.suffix)

    def _start_profile(self, pid: int, suffix: str = "") -> subprocess.Popen[bytes] | None:
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        if not Path(spy).exists():
            print("  (py-spy not installed: no profile)")
            return None
        out = self._profile_path(suffix)
        return subprocess.Popen(
            [spy, "record", "--pid", str(pid), "--subprocesses", "--format", "raw",
             "--output", str(out), "--rate", "250", "--nonblocking", "--gil"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _stop_profile(self, spy: subprocess.Popen[bytes], suffix: str = "") -> None:
        spy.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            spy.wait(30)
        print(f"  {'watcher' if suffix else 'launchers'}:")
        report_profile(self._profile_path(suffix))


def report_profile(path: Path, top: int = 15) -> None:
    """Print the functions with the most samples (self time) from a py-spy raw profile."""
    if not path.exists():
        print("  (no profile written)")
        return
    own: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        leaf = frames[-1]
        own[leaf] = own.get(leaf, 0) + int(count)
        total += int(count)
    print(f"  profile: {total} samples holding the GIL in worker processes, top self time:")
    for frame, count in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
        print(f"    {100 * count / total:5.1f}%  {frame[:110]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds, for CI")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=200.0, help="limit for the tracking run")
    parser.add_argument("--profile", action="store_true", help="py-spy the capacity run")
    parser.add_argument("--profile-out", type=Path, default=None,
                        help="keep the raw py-spy profile in this file")
    parser.add_argument("--capacity-only", action="store_true",
                        help="measure capacity only (skip tracking and latency)")
    parser.add_argument("--lifecycle", action="store_true",
                        help="let the simulator schedule and run the pods too")
    parser.add_argument("--watch", action="store_true",
                        help="whole pod lives: run, watch, archive the log and delete each pod, "
                             "with the watcher in a process of its own (implies --lifecycle)")
    parser.add_argument("--no-log-archive", action="store_true",
                        help="with --watch: the watcher keeps no logs (no log GET per pod)")
    parser.add_argument("--run-time", type=float, default=0.5,
                        help="seconds each pod runs with --watch")
    args = parser.parse_args()
    if args.quick:
        args.tasks = min(args.tasks, 400)
    code = measure(args)
    if args.quick and not args.watch:
        # The smoke covers whole pod lives too, briefly.
        code = code or measure(argparse.Namespace(**{**vars(args), "watch": True,
                                                     "tasks": 100, "profile": False}))
    return code


def measure(args: argparse.Namespace) -> int:
    """One simulator, and the measurements ``args`` asks for on it."""
    args.lifecycle = args.lifecycle or args.watch
    # Pods stay Pending unless --lifecycle: the simulated kubelet's work for thousands of
    # running pods would otherwise share the two cores with the pool being measured.
    config = SimulatorConfig(default_termination_grace_period_s=1, cluster=ClusterConfig(
        nodes=50, node_pods=1000, schedule_delay_s=0.01 if args.lifecycle else 3600.0,
        container_start_delay_s=0.05,
        default_run_time_s=args.run_time if args.watch else 3600.0))
    workdir = Path(tempfile.mkdtemp(prefix="podfleet-bench-"))
    sim = start_simulator(config, mode="process")
    try:
        bench = Bench(args, sim, workdir)
        print(f"pool: {args.processes} processes × {args.threads} threads, batches of "
              f"{args.batch_size}; simulator in its own process; 2-core machine shared; "
              f"load average {os.getloadavg()[0]:.1f}"
              + ("; whole pod lives, watcher in its own process" if args.watch else ""))

        events = bench.phase(args.tasks, profile=args.profile)
        started = bench.started
        finished = max(e.occurred_at for e in events)
        capacity = len(events) / (finished - started)
        print(f"capacity: {len(events)} pods in {finished - started:.2f}s = "
              f"{capacity:,.0f} creates/s end to end (rate limit off)")
        wall = bench.cpu.pop("wall")
        print("  CPU during it (2 cores = " + f"{2 * wall:.1f} CPU-s available): " + ", ".join(
            f"{name} {cpu:.1f}s ({1e6 * cpu / len(events):.0f} µs/pod)"
            for name, cpu in bench.cpu.items()))

        if args.capacity_only or args.watch:
            return 0
        rate = min(args.rate, capacity / 2)
        tracked = bench.phase(int(rate * (3 if args.quick else 10)), rate=rate)
        sent = sorted(e.detail["sent_at"] for e in tracked)
        burst = max(1, int(rate / 20))
        achieved = (len(sent) - burst) / (sent[-1] - sent[0])
        print(f"tracking: limit {rate:.0f}/s → {achieved:.1f}/s sent "
              f"({100 * (achieved - rate) / rate:+.1f}%)")

        half = capacity / 2
        steady = bench.phase(int(half * (2 if args.quick else 10)), arrival_rate=half)
        latencies = [e.occurred_at - bench.queued_at[e.launch_id] for e in steady]
        print(f"latency at half capacity ({half:,.0f} tasks/s arriving): p50 "
              f"{1000 * percentile(latencies, 50):.1f} ms, p99 "
              f"{1000 * percentile(latencies, 99):.1f} ms (queued → pod accepted)")
    finally:
        sim.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
