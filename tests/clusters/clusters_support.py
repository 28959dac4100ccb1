"""A podfleet world of several clusters: simulator processes, one clusters file naming them,
real worker pools, a sender of signed launch messages and readers of the outcome."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import redis
from prompt_launches import PROMPT_LAUNCHES

from podfleet.broker import enqueue_envelopes, make_broker
from podfleet.contracts.events import TaskEvent
from podfleet.contracts.keys import TaskKey
from podfleet.contracts.messages import LaunchBatch, LaunchRequest, new_launch_id
from podfleet.contracts.naming import EXECUTOR_LABEL, MANAGED_SELECTOR
from podfleet.contracts.redis_keys import RedisKeys
from podfleet.contracts.signing import MessageSigner
from podfleet.kube.client import KubeClient
from podfleet.local.fleet import LocalFleet
from podfleet.settings import Settings
from podfleet.simulator.cluster.config import ClusterConfig
from podfleet.simulator.config import SimulatorConfig
from podfleet.simulator.server import RunningSimulator, start_simulator

SIGNING_KEY = "clusters-tests-signing-key-0123456789"


def sim_config() -> SimulatorConfig:
    """Pods schedule at once and keep running, so a cluster's pod list is its creates."""
    return SimulatorConfig(
        default_termination_grace_period_s=1,
        cluster=ClusterConfig(nodes=10, node_pods=500, schedule_delay_s=0.01,
                              container_start_delay_s=0.05, default_run_time_s=3600.0))


class Clusters:
    """Simulators as named clusters, and a fleet whose clusters file lists them all.

    ``clusters`` maps each name to what its entry in the file adds (``labels``,
    ``max_pending_pods``, …); every cluster gets a simulator process of its own.
    """

    def __init__(self, redis_url: str, tmp_path: Path,
                 clusters: Mapping[str, Mapping[str, Any]], **env: str) -> None:
        self.tmp_path = tmp_path
        self.executor_id = f"ex-{uuid.uuid4().hex[:8]}"
        self.sims: dict[str, RunningSimulator] = {}
        self.kubeconfigs: dict[str, Path] = {}
        entries = []
        try:
            for name, extra in clusters.items():
                sim = self.sims[name] = start_simulator(
                    sim_config(), mode="process", log=tmp_path / f"sim-{name}.log")
                self.kubeconfigs[name] = sim.write_kubeconfig(tmp_path / f"{name}.kubeconfig")
                entries.append({"name": name, "kubeconfig": f"{name}.kubeconfig", **extra})
            clusters_file = tmp_path / "clusters.json"
            clusters_file.write_text(json.dumps(entries))
            first = next(iter(self.sims.values()))
            self.local = LocalFleet(
                workdir=tmp_path, simulator=first, redis_url=redis_url, migrate=False,
                signing_key=SIGNING_KEY, env={
                    "PODFLEET_EXECUTOR_ID": self.executor_id,
                    "PODFLEET_CLUSTERS_FILE": str(clusters_file),
                    **PROMPT_LAUNCHES,
                    "PODFLEET_WATCHER_LEASE_SECONDS": "3",
                    **env,
                }).start()
        except BaseException:
            self._stop_sims()
            raise
        self.settings: Settings = self.local.settings()
        self.broker = make_broker(self.settings)
        self.redis = redis.Redis.from_url(redis_url)
        self.keys = RedisKeys(self.settings.redis.prefix)

    def _stop_sims(self) -> None:
        for sim in self.sims.values():
            sim.stop()

    def close(self) -> None:
        self.local.close()
        self._stop_sims()
        self.redis.close()

    # --- messages -------------------------------------------------------------------------

    def request(self, n: int, clusters: tuple[str, ...]) -> LaunchRequest:
        return LaunchRequest(
            key=TaskKey("dag", f"task-{n}", "run-1", -1, 1), launch_id=new_launch_id(),
            command=("echo", "hi"), executor_id=self.executor_id, namespace="default",
            queued_at=time.time(), clusters=clusters)

    def send(self, requests: list[LaunchRequest], batch_size: int = 20) -> None:
        signer = MessageSigner(SIGNING_KEY.encode())
        envelopes = [LaunchBatch(requests=tuple(requests[i:i + batch_size])).seal(signer)
                     for i in range(0, len(requests), batch_size)]
        enqueue_envelopes(self.broker, self.settings.launch.queue, envelopes)

    # --- outcomes -------------------------------------------------------------------------

    def events(self) -> list[TaskEvent]:
        stream = self.keys.events(self.executor_id)
        return [TaskEvent.from_fields(fields) for _, fields in self.redis.xrange(stream)]

    def launched(self) -> dict[str, TaskEvent]:
        """Launch id -> its LAUNCHED event."""
        return {e.launch_id: e for e in self.events()
                if e.state is not None and e.state.value == "launched"}

    def pods(self, cluster: str) -> list[dict[str, Any]]:
        kube = KubeClient.from_config(kubeconfig=str(self.kubeconfigs[cluster]))
        try:
            return kube.list_pods("default", label_selector=(
                f"{MANAGED_SELECTOR},{EXECUTOR_LABEL}={self.executor_id}")).items
        finally:
            kube.close()

    def launch_ids_on(self, cluster: str) -> list[str]:
        """The launch ids of the pods on ``cluster`` (one per pod)."""
        return [p["metadata"]["labels"]["podfleet.io/launch-id"] for p in self.pods(cluster)]

    def lease_holder(self, cluster: str) -> tuple[str, int] | None:
        """(holder, token) of ``cluster``'s watcher lease, or None."""
        holder, token = self.redis.hmget(self.keys.for_cluster(cluster).watcher_lease,
                                         "holder", "token")
        if holder is None or token is None:
            return None
        return holder.decode(), int(token)
