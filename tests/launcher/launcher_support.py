"""Helpers of the launcher tests: a podfleet world of worker processes (a local fleet), a
sender, readers."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable
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
from podfleet.simulator.server import RunningSimulator

SIGNING_KEY = "launcher-tests-signing-key-0123456789"


def sim_config() -> SimulatorConfig:
    """Pods schedule at once and keep running, so the pod list is the set of creates."""
    return SimulatorConfig(
        default_termination_grace_period_s=1,
        cluster=ClusterConfig(nodes=20, node_pods=500, schedule_delay_s=0.01,
                              container_start_delay_s=0.05, default_run_time_s=3600.0),
    )


class Fleet:
    """One test's podfleet world: a :class:`LocalFleet` on the session's simulator and Redis
    (no executor, so no DB), a sender, and readers of the outcome."""

    def __init__(self, redis_url: str, sim: RunningSimulator, tmp_path: Path) -> None:
        self.sim = sim
        self.tmp_path = tmp_path
        self.executor_id = f"ex-{uuid.uuid4().hex[:8]}"
        self.local = LocalFleet(
            workdir=tmp_path, simulator=sim, redis_url=redis_url, migrate=False,
            signing_key=SIGNING_KEY, env={
                "PODFLEET_EXECUTOR_ID": self.executor_id, **PROMPT_LAUNCHES}).start()
        #: The PODFLEET_* variables of the workers (and the sender); a test may change them.
        self.env = self.local.env
        self._settings: Settings | None = None
        self._broker: Any = None
        self.redis = redis.Redis.from_url(redis_url)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = self.local.settings()
        return self._settings

    @property
    def broker(self) -> Any:
        if self._broker is None:
            self._broker = make_broker(self.settings)
        return self._broker

    # --- workers --------------------------------------------------------------------------

    def start_worker(self, processes: int = 1, threads: int = 4,
                     **env: str) -> subprocess.Popen[bytes]:
        """A launcher pool (``--no-watcher``: these tests read launches, not pod phases)."""
        return self.local.workers.start(processes, threads, watcher=False, **env)

    def kill_worker(self, process: subprocess.Popen[bytes]) -> None:
        """SIGKILL the whole worker (its dramatiq parent and children), as a crash would."""
        self.local.workers.kill(process)

    def stop_workers(self) -> None:
        self.local.workers.stop()

    def worker_logs(self) -> str:
        return self.local.workers.logs()

    def close(self) -> None:
        self.local.close()
        self.redis.close()

    # --- messages -------------------------------------------------------------------------

    def request(self, n: int = 0, *, command: tuple[str, ...] = ("echo", "hi"),
                executor_config: dict[str, Any] | None = None,
                deadline: float | None = None, dag_id: str = "dag") -> LaunchRequest:
        return LaunchRequest(
            key=TaskKey(dag_id, f"task-{n}", "run-1", -1, 1), launch_id=new_launch_id(),
            command=command, executor_id=self.executor_id, namespace="default",
            queued_at=time.time(), executor_config=executor_config or {}, deadline=deadline)

    def seal(self, requests: list[LaunchRequest]) -> dict[str, Any]:
        return LaunchBatch(requests=tuple(requests)).seal(MessageSigner(SIGNING_KEY.encode()))

    def send(self, requests: list[LaunchRequest], batch_size: int = 50) -> None:
        envelopes = [self.seal(requests[i:i + batch_size])
                     for i in range(0, len(requests), batch_size)]
        self.send_envelopes(envelopes)

    def send_envelopes(self, envelopes: list[dict[str, Any]]) -> None:
        enqueue_envelopes(self.broker, self.settings.launch.queue, envelopes)

    # --- outcomes -------------------------------------------------------------------------

    def events(self) -> list[TaskEvent]:
        stream = RedisKeys(self.settings.redis.prefix).events(self.executor_id)
        return [TaskEvent.from_fields(fields) for _, fields in self.redis.xrange(stream)]

    def wait_for_events(self, count: int, timeout: float = 60.0) -> list[TaskEvent]:
        deadline = time.monotonic() + timeout
        stream = RedisKeys(self.settings.redis.prefix).events(self.executor_id)
        while time.monotonic() < deadline:
            if self.redis.xlen(stream) >= count:
                return self.events()
            self.check_workers_alive()
            time.sleep(0.05)
        raise AssertionError(f"only {self.redis.xlen(stream)} of {count} events after "
                             f"{timeout}s\n{self.worker_logs()[-4000:]}")

    def check_workers_alive(self) -> None:
        self.local.workers.check_alive()

    def pods(self) -> list[dict[str, Any]]:
        kube = KubeClient.from_config(kubeconfig=self.env["PODFLEET_KUBECONFIG"])
        try:
            return kube.list_pods("default", label_selector=(
                f"{MANAGED_SELECTOR},{EXECUTOR_LABEL}={self.executor_id}")).items
        finally:
            kube.close()

    def queue_sizes(self) -> dict[str, int]:
        from podfleet.broker import queue_sizes

        return queue_sizes(self.broker, self.settings.launch.queue)


def wait_until(predicate: Callable[[], bool], timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(message)
