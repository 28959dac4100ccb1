"""Helpers for the watcher tests: podfleet pods (as the launcher builds them), pod JSON with a
given status for the pure phase tests, a fast simulator, and stream readers."""

from __future__ import annotations

import dataclasses
import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

import redis
from fast_cluster import FAST_CLUSTER

from podfleet.contracts.events import TaskEvent
from podfleet.contracts.keys import TaskKey
from podfleet.contracts.naming import pod_name, task_annotations, task_labels
from podfleet.contracts.redis_keys import RedisKeys
from podfleet.local.waiting import wait_for as wait_until
from podfleet.settings import DeletePolicy
from podfleet.simulator.config import SimulatorConfig
from podfleet.simulator.faults import FaultConfig
from podfleet.simulator.server import RunningSimulator, start_simulator
from podfleet.workers.watcher.lease import WatcherLease
from podfleet.workers.watcher.loop import Watcher, WatchOptions

T = TypeVar("T")
FATAL = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName",
                   "CreateContainerConfigError"})
EXECUTOR = "exec-a"
_numbers = itertools.count()

FAST = dataclasses.replace(FAST_CLUSTER, default_run_time_s=0.05)


def fast_simulator(faults: FaultConfig | None = None, mode: str = "thread",
                   **overrides: Any) -> RunningSimulator:
    """A simulator whose pods live for tens of milliseconds, with bookmarks every 0.3 s."""
    values: dict[str, Any] = {"cluster": FAST, "faults": faults or FaultConfig(),
                              "default_termination_grace_period_s": 1,
                              "bookmark_interval_seconds": 0.3}
    values.update(overrides)
    return start_simulator(SimulatorConfig(**values), mode=mode)  # type: ignore[arg-type]


def new_key(dag: str = "dag") -> TaskKey:
    return TaskKey(dag, f"task{next(_numbers)}", "run-1", -1, 1)


def task_pod(key: TaskKey, launch_id: str | None = None, *, executor: str = EXECUTOR,
             fate: dict[str, str] | None = None, namespace: str = "default") -> dict[str, Any]:
    """A pod manifest carrying podfleet's labels and annotations, plus simulator fate."""
    launch = launch_id or f"launch-{key.task_id}-{next(_numbers)}"
    annotations = task_annotations(key, launch, executor, time.time())
    annotations.update(fate or {})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": pod_name(key, launch), "namespace": namespace,
                     "labels": task_labels(key, launch, executor),
                     "annotations": annotations},
        "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "base", "image": "busybox:1.36"}]},
    }


def with_status(pod: dict[str, Any], phase: str, *, uid: str = "uid-1",
                containers: list[dict[str, Any]] | None = None, reason: str | None = None,
                message: str | None = None, node: str | None = "node-1",
                deleting: bool = False,
                created: str = "2024-05-01T10:00:00Z") -> dict[str, Any]:
    """The pod as the API returns it: uid, creation time, node, and the given status."""
    out = dict(pod)
    meta = dict(pod["metadata"], uid=uid, creationTimestamp=created, resourceVersion="7")
    if deleting:
        meta["deletionTimestamp"] = "2024-05-01T10:01:00Z"
    out["metadata"] = meta
    spec = dict(pod["spec"])
    if node:
        spec["nodeName"] = node
    out["spec"] = spec
    status: dict[str, Any] = {"phase": phase}
    if containers is not None:
        status["containerStatuses"] = containers
    if reason:
        status["reason"] = reason
    if message:
        status["message"] = message
    out["status"] = status
    return out


def running(started: str = "2024-05-01T10:00:03Z") -> list[dict[str, Any]]:
    return [{"name": "base", "state": {"running": {"startedAt": started}}}]


def terminated(code: int, reason: str, message: str | None = None) -> list[dict[str, Any]]:
    term: dict[str, Any] = {"exitCode": code, "reason": reason,
                            "startedAt": "2024-05-01T10:00:03Z",
                            "finishedAt": "2024-05-01T10:00:09Z"}
    if message:
        term["message"] = message
    return [{"name": "base", "state": {"terminated": term}}]


def waiting(reason: str, message: str = "") -> list[dict[str, Any]]:
    return [{"name": "base", "state": {"waiting": {"reason": reason, "message": message}}}]


def stream_events(client: redis.Redis, keys: RedisKeys,
                  executor: str = EXECUTOR) -> list[TaskEvent]:
    """Every event in the executor's stream, in order."""
    return [TaskEvent.from_fields(fields)
            for _, fields in client.xrange(keys.events(executor))]


def per_launch(events: list[TaskEvent]) -> Counter[tuple[str, str]]:
    """(launch id, state or kind) -> how many times it was published."""
    return Counter((e.launch_id, e.state.value if e.state else e.kind.value) for e in events)


def wait_for(check: Callable[[], T], timeout: float = 15.0, interval: float = 0.05,
             what: str = "condition") -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    return wait_until(check, timeout, what, interval)


def options(namespaces: tuple[str, ...] = ("default",), **overrides: Any) -> WatchOptions:
    """Fast options for tests: short timeouts and backoffs, deletion off unless asked."""
    values: dict[str, Any] = {
        "namespaces": namespaces,
        "fatal_reasons": FATAL,
        "delete_policy": DeletePolicy.NEVER,
        "delete_rate": 0.0,
        "delete_delay_seconds": 0.0,
        "log_archive": None,
        "log_retention_days": 0.0,
        "watch_timeout_seconds": 30,
        "read_timeout_seconds": 2.0,
        "backoff_initial_seconds": 0.05,
        "backoff_max_seconds": 0.5,
        "idle_rv_flush_seconds": 0.2,
    }
    values.update(overrides)
    return WatchOptions(**values)


@dataclasses.dataclass
class RunningWatcher:
    """A watcher loop in a thread of the test process, holding its own lease."""

    lease: WatcherLease
    stop: threading.Event
    thread: threading.Thread

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        self.lease.release()


def start_watcher(sim: RunningSimulator, url: str, keys: RedisKeys, opts: WatchOptions,
                  lease_seconds: float = 2.0, kubeconfig: str | None = None) -> RunningWatcher:
    """Acquire the lease and run a Watcher against ``sim`` in a thread (as the cluster's
    admin, or as whoever ``kubeconfig`` names)."""
    from podfleet.kube.client import KubeClient

    client = redis.Redis.from_url(url)
    lease = WatcherLease(client, keys, lease_seconds=lease_seconds)
    assert lease.try_acquire(), "the lease should be free"
    lease.start_renewing()
    kube = (KubeClient.from_config(kubeconfig=kubeconfig, timeout_seconds=5) if kubeconfig
            else KubeClient(sim.api_client(), timeout_seconds=5))
    stop = threading.Event()
    watcher = Watcher(kube=kube, client=client, keys=keys, lease=lease, options=opts)
    thread = threading.Thread(target=watcher.run, args=(stop,), daemon=True)
    thread.start()
    return RunningWatcher(lease, stop, thread)
