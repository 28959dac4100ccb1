"""Helpers for the simulated-cluster and fault tests: a fast simulator, pod builders, and
kubernetes_asyncio's client configured as a user's program configures it.

Latencies are milliseconds so a pod's whole life takes a few tens of milliseconds; tests wait
for states with a deadline (a failure, never a timing assertion).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

from fast_cluster import FAST_CLUSTER

from podfleet.local.waiting import wait_for as wait_until
from podfleet.simulator.config import SimulatorConfig
from podfleet.simulator.faults import FaultConfig
from podfleet.simulator.server import RunningSimulator, start_simulator

T = TypeVar("T")

FAST = FAST_CLUSTER

_names = itertools.count()


def fast_simulator(faults: FaultConfig | None = None, **cluster: Any) -> RunningSimulator:
    """A thread-mode simulator whose cluster runs on millisecond latencies."""
    config = SimulatorConfig(
        cluster=dataclasses.replace(FAST, **cluster),
        faults=faults or FaultConfig(),
        default_termination_grace_period_s=2,
    )
    return start_simulator(config)


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_names)}"


def pod_body(
    name: str,
    annotations: dict[str, str] | None = None,
    *,
    cpu: str | None = None,
    command: list[str] | None = None,
    env: dict[str, str] | None = None,
    restart_policy: str = "Never",
    node_selector: dict[str, str] | None = None,
    grace_s: int | None = None,
) -> dict[str, Any]:
    """A minimal pod as podfleet creates them (restartPolicy Never unless told)."""
    container: dict[str, Any] = {"name": "main", "image": "busybox:1.36"}
    if cpu is not None:
        container["resources"] = {"requests": {"cpu": cpu}}
    if command is not None:
        container["command"] = command
    if env:
        container["env"] = [{"name": k, "value": v} for k, v in env.items()]
    spec: dict[str, Any] = {"restartPolicy": restart_policy, "containers": [container]}
    if node_selector:
        spec["nodeSelector"] = node_selector
    if grace_s is not None:
        spec["terminationGracePeriodSeconds"] = grace_s
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": spec,
    }


def unschedulable_message(api: Any, name: str, namespace: str = "default") -> str | None:
    """The message of the pod's PodScheduled=False condition (why the scheduler could not
    place it), or None while it has none."""
    for condition in api.read_namespaced_pod(name, namespace).status.conditions or ():
        if condition.type == "PodScheduled" and condition.status == "False":
            message: str = condition.message
            return message
    return None


def wait_for(probe: Callable[[], T | None], timeout_s: float = 10.0, what: str = "") -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``timeout_s``."""
    value = wait_until(probe, timeout_s, what or str(probe), interval=0.01)
    assert value is not None
    return value


@contextlib.asynccontextmanager
async def asyncio_core_api(sim: RunningSimulator, tmp_path: Path) -> AsyncIterator[Any]:
    """kubernetes_asyncio's CoreV1Api on ``sim``, from a kubeconfig file (the CA and the
    token) loaded by kubernetes_asyncio itself, as a user's program does."""
    import kubernetes_asyncio

    configuration = kubernetes_asyncio.client.Configuration()
    await kubernetes_asyncio.config.load_kube_config(
        config_file=str(sim.write_kubeconfig(tmp_path / "kubeconfig")),
        client_configuration=configuration)
    async with kubernetes_asyncio.client.ApiClient(configuration) as api_client:
        yield kubernetes_asyncio.client.CoreV1Api(api_client)
