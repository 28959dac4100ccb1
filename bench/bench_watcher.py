"""Watcher benchmarks: throughput, event-to-stream latency, takeover after SIGKILL.

    python bench/bench_watcher.py            full run (about a minute with the 15 s lease)
    python bench/bench_watcher.py --quick    smoke (seconds)

* **Throughput**: a stand-in API server (a separate process, so it does not share the
  watcher's GIL) streams pre-built watch events of realistic podfleet pods (~2.5 KB each:
  ADDED Pending, MODIFIED Running, MODIFIED Succeeded) as fast as the socket takes them, one
  event per HTTP chunk as a real API server sends them. The watcher decodes, maps and publishes
  them (fenced Lua batches into 4 executors' streams). Reported: pod watch events/s processed
  and task events/s published, from the first byte to the last XADD.
* **Latency** at a paced rate (default 1,000 pod events/s): the server records when it wrote
  each event; the Redis stream entry id holds when it was XADDed. p50/p99 of the difference is
  the phase-change-in-API to event-in-stream latency (ms resolution).
* **Takeover**: two processes run the watcher supervisor (what every worker process runs);
  the lease holder is SIGKILLed; reported is the time until the other holds the lease, with
  the lease time (default 15 s: PODFLEET_WATCHER_LEASE_SECONDS).

The simulator is not used for throughput: its API server (one Python process) produces a few
thousand pod events/s at most, which would measure the simulator, not the watcher.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import redis

from podfleet.contracts.keys import TaskKey
from podfleet.contracts.naming import pod_name, task_annotations, task_labels
from podfleet.contracts.redis_keys import RedisKeys
from podfleet.local.fleet import LocalFleet
from podfleet.local.processes import stop_process_groups
from podfleet.local.redis_server import RedisServer
from podfleet.local.stats import percentile
from podfleet.local.waiting import wait_for
from podfleet.simulator.kubeconfig import write_kubeconfig

EXECUTORS = 4


# --- the stand-in API server (runs in a child process) ------------------------------------

def _pod(i: int, phase: str, rv: int) -> dict[str, Any]:
    key = TaskKey("bench_dag", f"task_{i}", "scheduled__2024-05-01T00:00:00", 0, 1)
    launch = f"launch-{i}"
    executor = f"exec-{i % EXECUTORS}"
    name = pod_name(key, launch)
    status: dict[str, Any] = {"phase": phase, "qosClass": "BestEffort",
                              "hostIP": "10.0.0.1", "podIP": f"10.1.{i // 250 % 250}.{i % 250}",
                              "startTime": "2024-05-01T10:00:01Z",
                              "conditions": [{"type": t, "status": "True",
                                              "lastTransitionTime": "2024-05-01T10:00:01Z"}
                                             for t in ("Initialized", "Ready",
                                                       "ContainersReady", "PodScheduled")]}
    if phase == "Running":
        status["containerStatuses"] = [{"name": "base", "ready": True, "restartCount": 0,
                                        "image": "docker.io/library/python:3.11-slim",
                                        "state": {"running": {
                                            "startedAt": "2024-05-01T10:00:02Z"}}}]
    elif phase == "Succeeded":
        status["containerStatuses"] = [{"name": "base", "ready": False, "restartCount": 0,
                                        "image": "docker.io/library/python:3.11-slim",
                                        "state": {"terminated": {
                                            "exitCode": 0, "reason": "Completed",
                                            "startedAt": "2024-05-01T10:00:02Z",
                                            "finishedAt": "2024-05-01T10:00:05Z"}}}]
    return {
        "kind": "Pod", "apiVersion": "v1",
        "metadata": {"name": name, "namespace": "default", "uid": f"uid-{i}",
                     "resourceVersion": str(rv),
                     "creationTimestamp": "2024-05-01T10:00:00Z",
                     "labels": task_labels(key, launch, executor),
                     "annotations": task_annotations(key, launch, executor, 1714557600.0)},
        "spec": {"restartPolicy": "Never", "nodeName": "node-1",
                 "serviceAccountName": "default", "terminationGracePeriodSeconds": 30,
                 "containers": [{"name": "base", "image": "python:3.11-slim",
                                 "command": ["python", "-m", "airflow", "tasks", "run",
                                             "bench_dag", f"task_{i}", "scheduled"],
                                 "resources": {"requests": {"cpu": "100m",
                                                            "memory": "128Mi"}}}]},
        "status": status,
    }


def build_events(pods: int) -> list[bytes]:
    """Watch event lines, phase by phase per pod, interleaved like a busy cluster."""
    events = []
    rv = 100
    for i in range(pods):
        for kind, phase in (("ADDED", "Pending"), ("MODIFIED", "Running"),
                            ("MODIFIED", "Succeeded")):
            rv += 1
            events.append(orjson.dumps({"type": kind, "object": _pod(i, phase, rv)}) + b"\n")
    return events


def serve(port_file: str, pods: int, rate: float, times_file: str) -> None:
    """Serve one watch stream of ``pods`` pods' events at ``rate`` events/s (0 = flat out)."""
    events = build_events(pods)
    chunks = [b"%x\r\n%s\r\n" % (len(e), e) for e in events]
    sent_at: list[float] = []
    served = threading.Event()

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            while True:
                line = self.rfile.readline()
                if not line:
                    return
                request = line.decode()
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                if "watch=true" not in request:
                    body = orjson.dumps({"kind": "PodList", "apiVersion": "v1",
                                         "metadata": {"resourceVersion": "100"}, "items": []})
                    self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
                    continue
                self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 b"Transfer-Encoding: chunked\r\n\r\n")
                if served.is_set():
                    time.sleep(3600)  # a later watch: nothing more happens
                    return
                served.set()
                self._stream()
                time.sleep(3600)

        def _stream(self) -> None:
            sock = self.connection
            if rate <= 0:
                start = time.time()
                for i in range(0, len(chunks), 256):
                    sock.sendall(b"".join(chunks[i:i + 256]))
                sent_at.append(start)
            else:
                start = time.monotonic()
                wall = time.time() - start
                for i, chunk in enumerate(chunks):
                    due = start + i / rate
                    pause = due - time.monotonic()
                    if pause > 0:
                        time.sleep(pause)
                    sock.sendall(chunk)
                    sent_at.append(wall + time.monotonic())
            Path(times_file).write_bytes(orjson.dumps(sent_at))

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    with Server(("127.0.0.1", 0), Handler) as server:
        Path(port_file).write_text(str(server.server_address[1]))
        server.serve_forever()


# --- the watcher side ---------------------------------------------------------------------

def _start_server(pods: int, rate: float, tmp: Path) -> tuple[subprocess.Popen[bytes], str,
                                                                  Path]:
    port_file = tmp / f"port-{uuid.uuid4().hex[:6]}"
    times_file = tmp / f"times-{uuid.uuid4().hex[:6]}"
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port_file), str(pods),
                             str(rate), str(times_file)])
    deadline = time.monotonic() + 60
    while not port_file.exists() or not port_file.read_text():
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError("the stand-in API server did not start")
        time.sleep(0.02)
    return proc, f"http://127.0.0.1:{port_file.read_text()}", times_file


def _kube(url: str) -> Any:
    from kubernetes import client as k8s

    from podfleet.kube.client import KubeClient

    configuration = k8s.Configuration()
    configuration.host = url
    return KubeClient(k8s.ApiClient(configuration), timeout_seconds=10)


def _stream_entries(client: redis.Redis, keys: RedisKeys) -> list[tuple[bytes, dict[Any, Any]]]:
    entries: list[tuple[bytes, dict[Any, Any]]] = []
    for e in range(EXECUTORS):
        entries += client.xrange(keys.events(f"exec-{e}"))
    return entries


def _run_watcher(redis_url: str, keys: RedisKeys, url: str, expected: int,
                 timeout: float) -> float:
    """Run a watcher until ``expected`` task events are in the streams; return the time."""
    from podfleet.settings import DeletePolicy, Settings
    from podfleet.workers.watcher.lease import WatcherLease
    from podfleet.workers.watcher.loop import Watcher, WatchOptions

    settings = Settings.from_env({})  # podfleet's defaults
    client = redis.Redis.from_url(redis_url)
    lease = WatcherLease(client, keys, lease_seconds=settings.watcher.lease_seconds)
    assert lease.try_acquire()
    lease.start_renewing()
    kube = _kube(url)
    stop = threading.Event()
    opts = WatchOptions.from_settings(settings, namespaces=("default",), fatal_reasons=frozenset(),
                                      delete_policy=DeletePolicy.NEVER, log_archive=None)
    thread = threading.Thread(target=Watcher(kube=kube, client=client, keys=keys, lease=lease,
                                             options=opts).run, args=(stop,), daemon=True)
    started = time.monotonic()
    thread.start()
    try:
        while True:
            total = sum(client.xlen(keys.events(f"exec-{e}")) for e in range(EXECUTORS))
            if total >= expected:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"only {total}/{expected} events after {timeout}s")
            time.sleep(0.005)
    finally:
        stop.set()
        thread.join(10)
        lease.release()
        kube.close()
        client.close()


def bench_throughput(redis_url: str, pods: int, tmp: Path) -> dict[str, float]:
    keys = RedisKeys(f"bench{uuid.uuid4().hex[:6]}")
    server, url, _ = _start_server(pods, 0, tmp)
    try:
        seconds = _run_watcher(redis_url, keys, url, 2 * pods, timeout=300)
    finally:
        server.kill()
        server.wait()
    return {"pod_events": 3 * pods, "seconds": seconds,
            "pod_events_per_s": 3 * pods / seconds, "task_events_per_s": 2 * pods / seconds}


def bench_latency(redis_url: str, pods: int, rate: float, tmp: Path) -> dict[str, float]:
    keys = RedisKeys(f"bench{uuid.uuid4().hex[:6]}")
    server, url, times_file = _start_server(pods, rate, tmp)
    try:
        _run_watcher(redis_url, keys, url, 2 * pods, timeout=60 + 3 * pods / rate)
        client = redis.Redis.from_url(redis_url)
        entries = _stream_entries(client, keys)
        client.close()
        deadline = time.monotonic() + 10
        while not times_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        sent = orjson.loads(times_file.read_bytes())
    finally:
        server.kill()
        server.wait()
    latencies = []
    for entry_id, fields in entries:
        launch = int(fields[b"launch_id"].decode().rsplit("-", 1)[1])
        state = fields[b"state"].decode()
        index = 3 * launch + (1 if state == "running" else 2)
        added_ms = int(entry_id.split(b"-")[0])
        latencies.append(max(0.0, added_ms / 1000 - sent[index]))
    return {"rate": rate, "events": len(latencies), "p50_ms": percentile(latencies, 50) * 1000,
            "p99_ms": percentile(latencies, 99) * 1000, "max_ms": max(latencies) * 1000}


SUPERVISOR_PROGRAM = """
import logging, signal, threading
from podfleet.workers.watcher.actor import WatcherSupervisor
logging.basicConfig(level=logging.WARNING)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
WatcherSupervisor().run(stop)
"""


def bench_takeover(redis_url: str, lease_seconds: float, tmp: Path) -> dict[str, float]:
    from podfleet.workers.watcher.actor import supervisor_interval
    from podfleet.workers.watcher.lease import current_holder

    prefix = f"bench{uuid.uuid4().hex[:6]}"
    keys = RedisKeys(prefix)
    server, url, _ = _start_server(10, 0, tmp)
    kubeconfig = write_kubeconfig(tmp / "kubeconfig", url, token="x", name="bench")
    fleet = LocalFleet(workdir=tmp, kubeconfig=kubeconfig, redis_url=redis_url, migrate=False,
                       redis_prefix=prefix,
                       env={"PODFLEET_WATCHER_LEASE_SECONDS": str(lease_seconds)})
    client = redis.Redis.from_url(redis_url)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        fleet.start()
        procs = [subprocess.Popen([sys.executable, "-c", SUPERVISOR_PROGRAM],
                                  env=fleet.environment(), start_new_session=True)
                 for _ in range(2)]
        first = wait_for(lambda: current_holder(client, keys), 60, "a watcher to take the lease",
                         interval=0.02)
        time.sleep(min(1.0, lease_seconds / 2))  # let it renew at least once, as in real life
        os.kill(int(first.holder.split(":")[1]), signal.SIGKILL)
        killed = time.monotonic()
        wait_for(lambda: (holder := current_holder(client, keys)) is not None
                 and holder.token != first.token, lease_seconds + 30, "a takeover",
                 interval=0.01)
        takeover = time.monotonic() - killed
    finally:
        stop_process_groups(procs, timeout=10)
        fleet.close()
        server.kill()
        server.wait()
        client.close()
    return {"lease_s": lease_seconds, "supervisor_interval_s": supervisor_interval(lease_seconds),
            "takeover_s": takeover}


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5])
        return 0
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few seconds of each (CI)")
    parser.add_argument("--pods", type=int, default=None, help="pods in the throughput run")
    parser.add_argument("--rate", type=float, default=1000.0,
                        help="pod events/s in the latency run")
    parser.add_argument("--lease", type=float, default=None, help="lease seconds (takeover)")
    args = parser.parse_args()
    pods = args.pods or (1000 if args.quick else 10_000)
    latency_pods = 200 if args.quick else 3000
    lease = args.lease or (2.0 if args.quick else 15.0)
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"podfleet-bench-{uuid.uuid4().hex[:6]}"
    tmp.mkdir(parents=True)
    redis_server = RedisServer().start()
    try:
        t = bench_throughput(redis_server.url, pods, tmp)
        print(f"throughput: {t['pod_events']:.0f} pod events in {t['seconds']:.2f}s = "
              f"{t['pod_events_per_s']:,.0f} pod events/s processed, "
              f"{t['task_events_per_s']:,.0f} task events/s published", flush=True)
        lat = bench_latency(redis_server.url, latency_pods, args.rate, tmp)
        print(f"latency at {lat['rate']:.0f} pod events/s: API write -> stream p50 "
              f"{lat['p50_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms, max {lat['max_ms']:.1f} ms "
              f"({lat['events']:.0f} task events)", flush=True)
        take = bench_takeover(redis_server.url, lease, tmp)
        print(f"takeover after SIGKILL: {take['takeover_s']:.2f}s (lease {take['lease_s']}s, "
              f"supervisor interval {take['supervisor_interval_s']}s)", flush=True)
    finally:
        redis_server.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    socket.setdefaulttimeout(None)
    sys.exit(main())
