"""What one Kubernetes request costs podfleet's client in CPU: the floor under worker CPU per pod.

A pod's life costs the workers a few requests whatever else they do: the launcher's create,
the watcher's read of the pod's log (when logs are archived, the default) and its share of a
delete, plus decoding the pod's watch events. This measures each alone, against the simulator
in its own process, as the CPU time of this process only (all its threads), divided by the
requests: the client's side, not the server's.

* create: ``AsyncKubeClient.create_pod`` (aiohttp, the launcher's transport), 64 at a time;
* log GET: ``KubeClient.read_pod_log`` (urllib3, the watcher's log keeper), 8 threads;
* delete one by one: ``KubeClient.delete_pod``, 8 threads, against a DeleteCollection per 32
  pods (``KubeClient.delete_pods``, what the watcher's deleter sends);
* a watch line decoded (``podfleet.kube.watch_events.decode_watch_event``).

    python bench/bench_request_cost.py [--pods 2000] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson

from podfleet.contracts.keys import TaskKey
from podfleet.contracts.naming import LAUNCH_ID_LABEL, pod_name, task_annotations, task_labels
from podfleet.kube.aio import AsyncKubeClient
from podfleet.kube.client import KubeClient
from podfleet.kube.watch_events import decode_watch_event
from podfleet.local.waiting import wait_for
from podfleet.simulator.cluster.config import ClusterConfig
from podfleet.simulator.config import SimulatorConfig
from podfleet.simulator.server import start_simulator
from podfleet.workers.watcher.deleter import launches_selector

NS = "default"


def task_pod(i: int, run: str) -> dict[str, Any]:
    """A pod with podfleet's labels and annotations, as the launcher makes them."""
    key = TaskKey("bench", f"t{i}", run, -1, 1)
    launch = f"{run}-{i:06d}"
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod_name(key, launch), "labels": task_labels(key, launch, "b"),
                         "annotations": task_annotations(key, launch, "b", time.time())},
            "spec": {"restartPolicy": "Never",
                     "containers": [{"name": "base", "image": "busybox:1.36",
                                     "args": ["true"],
                                     "resources": {"requests": {"cpu": "10m"}}}]}}


def cpu_per_call(calls: int, work: Callable[[], None]) -> float:
    """µs of this process's CPU per call while ``work`` runs."""
    started = time.process_time()
    work()
    return 1e6 * (time.process_time() - started) / calls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pods", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="a few seconds, for CI")
    args = parser.parse_args()
    count = 64 if args.quick else args.pods
    config = SimulatorConfig(default_termination_grace_period_s=1, cluster=ClusterConfig(
        nodes=20, node_pods=1000, schedule_delay_s=0.01, container_start_delay_s=0.01,
        default_run_time_s=0.05))
    sim = start_simulator(config, mode="process")
    kube = KubeClient(sim.api_client(), timeout_seconds=30)
    try:
        print(f"{count} pods; simulator in its own process; CPU of this (client) process only")
        results: dict[str, float] = {}
        for run in ("a", "b"):
            pods = [task_pod(i, f"r{run}") for i in range(count)]

            async def create_all(client: AsyncKubeClient, batch: list[dict[str, Any]]) -> None:
                await asyncio.gather(*(client.create_pod(NS, p) for p in batch))
                await client.close()

            aio = AsyncKubeClient.from_client(kube)
            results["create (aiohttp)"] = cpu_per_call(
                count, lambda: asyncio.run(create_all(aio, pods)))  # noqa: B023
            names = [p["metadata"]["name"] for p in pods]
            wait_for(lambda: all(p["status"].get("phase") == "Succeeded"
                                 for p in kube.list_pods(NS).items),
                     timeout=300, interval=0.5, what="every pod Succeeded")
            with ThreadPoolExecutor(8) as pool:
                results["log GET (urllib3)"] = cpu_per_call(count, lambda: list(pool.map(
                    lambda n: kube.read_pod_log(NS, n, container="base"), names)))  # noqa: B023
                if run == "a":
                    results["delete, one per pod"] = cpu_per_call(count, lambda: list(pool.map(
                        lambda n: kube.delete_pod(NS, n), names)))  # noqa: B023
                else:
                    launches = [p["metadata"]["labels"][LAUNCH_ID_LABEL] for p in pods]
                    batches = [launches[i:i + 32] for i in range(0, count, 32)]
                    results["delete, a collection of 32"] = cpu_per_call(count, lambda: [
                        kube.delete_pods(NS, launches_selector(b)) for b in batches])  # noqa: B023
            wait_for(lambda: not kube.list_pods(NS).items, timeout=120, interval=0.5,
                     what="every pod gone")
        line = orjson.dumps({"type": "MODIFIED", "object": {
            **task_pod(0, "w"), "status": {"phase": "Running", "containerStatuses": [
                {"name": "base", "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]}}})
        decodes = 20 * count
        results["watch line decoded"] = cpu_per_call(
            decodes, lambda: [decode_watch_event(line) for _ in range(decodes)])
        for what, micros in results.items():
            print(f"  {what:28s} {micros:7.0f} µs of client CPU each")
    finally:
        kube.close()
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
