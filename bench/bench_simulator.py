"""How fast is the cluster simulator? Pod creates/s, watch events/s, memory, create latency.

    python bench/bench_simulator.py            full run (about a minute or two)
    python bench/bench_simulator.py --quick    smoke run (a few seconds)

The simulator runs in its own process (``start_simulator(mode="process")``); the raw-HTTP
clients (aiohttp + orjson) run in another child process, the official-client phases in this
one, so client and server never share a GIL. Targets (issue #2), on a 2-core machine:
≥ 3,000 creates/s, ≥ 20,000 watch events/s, 100,000 pods < 1 GB, p99 < 10 ms at 1,000/s.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
import psutil

from podfleet.local.stats import percentile
from podfleet.simulator.cluster.config import ClusterConfig
from podfleet.simulator.config import SimulatorConfig
from podfleet.simulator.server import ProcessSimulator, start_simulator
from podfleet.simulator.tls import TlsConfig

NS = "default"
PODS_PATH = f"/api/v1/namespaces/{NS}/pods"


def pod_body(name: str, restart_policy: str = "Never") -> dict[str, Any]:
    """A pod shaped like the ones podfleet's launcher creates (~1.3 KB of JSON)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {"podfleet.io/managed": "true", "podfleet.io/dag-id": "bench_dag",
                       "podfleet.io/task-id": "task_a", "podfleet.io/try-number": "1",
                       "podfleet.io/executor": "exec-1"},
            "annotations": {"podfleet.io/dag-id": "bench_dag", "podfleet.io/task-id": "task_a",
                            "podfleet.io/run-id": "scheduled__2024-01-01T00:00:00+00:00",
                            "podfleet.io/launch-id": name},
        },
        "spec": {
            "restartPolicy": restart_policy,
            "containers": [{
                "name": "base",
                "image": "apache/airflow:2.9.0",
                "command": ["airflow", "tasks", "run"],
                "args": ["bench_dag", "task_a", "scheduled__2024-01-01T00:00:00+00:00",
                         "--local", "--subdir", "DAGS_FOLDER/bench.py"],
                "env": [{"name": "AIRFLOW__CORE__EXECUTOR", "value": "LocalExecutor"},
                        {"name": "PODFLEET_LAUNCH_ID", "value": name}],
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                              "limits": {"memory": "256Mi"}},
            }],
        },
    }


# -- raw HTTP clients (run in a child process) ------------------------------------------------

async def _raw_creates(url: str, token: str, prefix: str, count: int, concurrency: int,
                       restart_policy: str = "Never") -> tuple[int, int, float]:
    import aiohttp

    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    counter = iter(range(count))
    accepted = rejected = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal accepted, rejected
        for i in counter:
            body = orjson.dumps(pod_body(f"{prefix}-{i}", restart_policy))
            async with session.post(url + PODS_PATH, data=body, headers=headers) as response:
                await response.read()
                if response.status == 201:
                    accepted += 1
                else:
                    rejected += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return accepted, rejected, elapsed


async def _raw_watch(url: str, token: str, from_rv: int, target: int,
                     timeout_s: float) -> tuple[int, float]:
    import aiohttp

    headers = {"Authorization": f"Bearer {token}"}
    params = {"watch": "1", "resourceVersion": str(from_rv), "timeoutSeconds": str(int(timeout_s))}
    received = 0
    timeout = aiohttp.ClientTimeout(total=None, sock_read=timeout_s)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        started = time.perf_counter()
        async with session.get(url + PODS_PATH, params=params, headers=headers) as response:
            buffer = b""
            async for chunk in response.content.iter_any():
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line:
                        event = orjson.loads(line)
                        if event["type"] != "BOOKMARK":
                            received += 1
                if received >= target:
                    break
        elapsed = time.perf_counter() - started
    return received, elapsed


async def _paced_creates(url: str, token: str, prefix: str, rate: float,
                         duration_s: float) -> tuple[list[float], int, float]:
    import aiohttp

    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    latencies: list[float] = []
    errors = 0
    total = int(rate * duration_s)
    bodies = [orjson.dumps(pod_body(f"{prefix}-{i}")) for i in range(total)]

    async def one(session: aiohttp.ClientSession, body: bytes) -> None:
        nonlocal errors
        started = time.perf_counter()
        async with session.post(url + PODS_PATH, data=body, headers=headers) as response:
            await response.read()
            if response.status != 201:
                errors += 1
        latencies.append(time.perf_counter() - started)

    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector) as session:
        # Warm the connection pool so connects are not measured as create latency.
        await asyncio.gather(*(session.get(url + "/version", headers=headers) for _ in range(16)))
        tasks = []
        start = time.perf_counter()
        # How far behind schedule the client itself fell: a starved client inflates latency.
        worst_behind = 0.0
        for i, body in enumerate(bodies):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                worst_behind = max(worst_behind, -delay)
            tasks.append(asyncio.ensure_future(one(session, body)))
        await asyncio.gather(*tasks)
    return latencies, errors, worst_behind


def _child(kind: str, args: tuple[Any, ...], queue: Any) -> None:
    try:
        import uvloop  # type: ignore[import-not-found]

        uvloop.install()
    except ImportError:
        pass
    function = {"creates": _raw_creates, "watch": _raw_watch, "paced": _paced_creates}[kind]
    queue.put(asyncio.run(function(*args)))  # type: ignore[operator]


def in_child(kind: str, *args: Any) -> Any:
    """Run one raw-HTTP client phase in a fresh process and return its result."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(kind, args, queue))
    process.start()
    try:
        return queue.get(timeout=600)
    finally:
        process.join(30)


# -- official client phases (in this process, threads) --------------------------------------

def official_creates(sim: ProcessSimulator, prefix: str, count: int,
                     threads: int) -> tuple[int, float]:
    from kubernetes import client

    local = threading.local()
    api_clients: list[Any] = []
    lock = threading.Lock()

    def api() -> Any:
        if not hasattr(local, "api"):
            api_client = sim.api_client()
            with lock:
                api_clients.append(api_client)
            local.api = client.CoreV1Api(api_client)
        return local.api

    def create(i: int) -> bool:
        try:
            api().create_namespaced_pod(NS, pod_body(f"{prefix}-{i}"))
            return True
        except client.ApiException:
            return False

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        accepted = sum(pool.map(create, range(count)))
    elapsed = time.perf_counter() - started
    for api_client in api_clients:
        api_client.close()
    return accepted, elapsed


def official_watch(sim: ProcessSimulator, from_rv: int, target: int) -> tuple[int, float]:
    from kubernetes import client, watch

    api_client = sim.api_client()
    received = 0
    started = time.perf_counter()
    try:
        stream = watch.Watch().stream(client.CoreV1Api(api_client).list_namespaced_pod, NS,
                                      resource_version=str(from_rv), timeout_seconds=120)
        for _ in stream:
            received += 1
            if received >= target:
                break
    finally:
        api_client.close()
    return received, time.perf_counter() - started


def rss_mb(sim: ProcessSimulator) -> float:
    return float(psutil.Process(sim.process.pid).memory_info().rss) / 2**20


def load_average() -> str:
    """The machine's load: latency numbers from a busy machine say little about the simulator."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} CPUs)"


def steal_share(before: Any, after: Any) -> float:
    """The share of CPU time the hypervisor gave to other machines (Linux; 0 elsewhere)."""
    total = sum(after) - sum(before)
    stolen = getattr(after, "steal", 0.0) - getattr(before, "steal", 0.0)
    return stolen / total if total > 0 else 0.0


def wait_until(probe: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not probe() and time.monotonic() < deadline:
        time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run of a few seconds")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--no-events", action="store_true",
                        help="run the simulator with event recording off")
    args = parser.parse_args()
    quick = args.quick
    n_raw = 1_000 if quick else 20_000
    n_official = 150 if quick else 4_000
    n_hold = 2_000 if quick else 100_000
    paced_s = 1.0 if quick else 10.0

    cluster = ClusterConfig(nodes=20, node_cpu="1000", node_memory="4Ti", node_pods=10_000)
    # Plain HTTP: the raw clients measure the server, not a TLS handshake per connection
    config = SimulatorConfig(cluster=cluster, history_window_events=400_000,
                             tls=TlsConfig(enabled=False), record_events=not args.no_events)
    results: dict[str, Any] = {}
    print(f"cluster: {cluster.nodes} nodes; schedule {cluster.schedule_delay_s}s, start "
          f"{cluster.container_start_delay_s}s, run {cluster.default_run_time_s}s; events "
          f"{'off' if args.no_events else 'on'}; "
          f"{load_average()}", flush=True)

    sim = start_simulator(config, mode="process")
    assert isinstance(sim, ProcessSimulator)
    try:
        start_rv = sim.admin.stats().resource_version
        accepted, rejected, elapsed = in_child("creates", sim.url, sim.token, "raw", n_raw,
                                               args.concurrency)
        results["creates_raw"] = accepted / elapsed
        print(f"creates, raw aiohttp x{args.concurrency}: {accepted} in {elapsed:.2f}s = "
              f"{accepted / elapsed:,.0f}/s (rejected {rejected})", flush=True)

        accepted, elapsed = official_creates(sim, "official", n_official, args.threads)
        results["creates_official"] = accepted / elapsed
        print(f"creates, official client x{args.threads} threads: {accepted} in "
              f"{elapsed:.2f}s = {accepted / elapsed:,.0f}/s", flush=True)

        # Let the pods finish so the history holds their whole lives, then replay it.
        wait_until(lambda: sim.admin.stats().pods.by_phase.get("Succeeded", 0)
                   >= n_raw + n_official, 120)
        events = sim.admin.stats().resource_version - start_rv
        received, elapsed = in_child("watch", sim.url, sim.token, start_rv, events, 120.0)
        results["watch_raw"] = received / elapsed
        print(f"watch, raw aiohttp+orjson: {received} events in {elapsed:.2f}s = "
              f"{received / elapsed:,.0f}/s", flush=True)
        target = min(events, 5_000 if quick else 60_000)
        received, elapsed = official_watch(sim, start_rv, target)
        results["watch_official"] = received / elapsed
        print(f"watch, official client Watch: {received} events in {elapsed:.2f}s = "
              f"{received / elapsed:,.0f}/s", flush=True)

        sim.admin.reset_stats()
        cpu_before = sum(psutil.Process(sim.process.pid).cpu_times()[:2])
        machine_before = psutil.cpu_times()
        paced_started = time.perf_counter()
        latencies, errors, behind = in_child("paced", sim.url, sim.token, "paced", 1000.0,
                                             paced_s)
        cpu_share = (sum(psutil.Process(sim.process.pid).cpu_times()[:2]) - cpu_before) / (
            time.perf_counter() - paced_started)
        steal = steal_share(machine_before, psutil.cpu_times())
        cluster_stats = sim.admin.stats().raw["cluster"]
        p50, p99 = percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000
        results["p99_ms"] = p99
        print(f"create latency at 1,000/s for {paced_s:.0f}s: p50 {p50:.2f} ms, p99 "
              f"{p99:.2f} ms, max {max(latencies) * 1000:.1f} ms, mean "
              f"{statistics.fmean(latencies) * 1000:.2f} ms ({errors} errors); simulator CPU "
              f"{cpu_share:.0%} of a core, its worst timer lateness "
              f"{cluster_stats['timer_lateness_max_ms']:.0f} ms "
              f"({cluster_stats['timer_late_wakeups']} wake-ups > 50 ms late); the client "
              f"fell {behind * 1000:.0f} ms behind its schedule at worst; {load_average()}, "
              f"CPU steal {steal:.0%}", flush=True)
        results["paced_cpu_steal"] = round(steal, 3)
    finally:
        sim.stop()

    # Memory: a fresh simulator holding n_hold long-running pods (restartPolicy Always).
    hold_config = SimulatorConfig(
        cluster=ClusterConfig(nodes=20, node_cpu="100000", node_memory="100Ti",
                              node_pods=10_000),
        tls=TlsConfig(enabled=False),
        record_events=not args.no_events,
    )
    sim = start_simulator(hold_config, mode="process")
    assert isinstance(sim, ProcessSimulator)
    try:
        baseline = rss_mb(sim)
        # restartPolicy Always without a duration: the pods run until deleted.
        accepted, _, elapsed = in_child("creates", sim.url, sim.token, "hold", n_hold,
                                        args.concurrency, "Always")
        wait_until(lambda: sim.admin.stats().pods.by_phase.get("Running", 0) >= accepted, 300)
        held = rss_mb(sim)
        stats = sim.admin.stats()
        results["rss_mb"] = held
        print(f"memory: {stats.pods.current:,} pods held ({stats.pods.by_phase}), RSS "
              f"{held:,.0f} MB (baseline {baseline:,.0f} MB; "
              f"{(held - baseline) * 1024 / max(1, stats.pods.current):.1f} KB/pod incl. "
              f"watch history); created at {accepted / elapsed:,.0f}/s", flush=True)
    finally:
        sim.stop()

    results["load_average_1m"] = round(os.getloadavg()[0], 2)
    print("\nsummary: " + orjson.dumps(results).decode())
    ok = (results["creates_raw"] >= 3000 and results["watch_raw"] >= 20_000
          and results["p99_ms"] < 10 and (quick or results["rss_mb"] < 1024))
    print("targets: " + ("met" if ok else "NOT met (see numbers above)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
