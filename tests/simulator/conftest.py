"""Fixtures for the simulator's API tests: one simulator for the session, a namespace per test.

The simulator runs in a thread of the test process with every latency set to milliseconds.
Each test works in a namespace of its own, so tests never see each other's pods.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import urllib3
from kubernetes import client

from podfleet.simulator.cluster.config import ClusterConfig
from podfleet.simulator.config import SimulatorConfig
from podfleet.simulator.server import RunningSimulator, ThreadSimulator, start_simulator


def fast_config(**overrides: Any) -> SimulatorConfig:
    """A config whose pods schedule and start within milliseconds and stay Running."""
    cluster = ClusterConfig(
        nodes=3,
        schedule_delay_s=0.01,
        container_start_delay_s=0.02,
        default_run_time_s=3600.0,
        termination_delay_s=0.01,
    )
    values: dict[str, Any] = {
        "default_termination_grace_period_s": 1,
        "bookmark_interval_seconds": 0.3,
        "cluster": cluster,
    }
    values.update(overrides)
    return SimulatorConfig(**values)


@pytest.fixture(scope="session")
def sim() -> Iterator[ThreadSimulator]:
    simulator = start_simulator(fast_config())
    assert isinstance(simulator, ThreadSimulator)
    yield simulator
    simulator.stop()


@pytest.fixture
def api_client(sim: RunningSimulator) -> Iterator[client.ApiClient]:
    """The official client's connection to this test's simulator: the session's, or the one a
    module starts as its own ``sim`` fixture (of any scope)."""
    api = sim.api_client()
    yield api
    api.close()


@pytest.fixture
def api(api_client: client.ApiClient) -> client.CoreV1Api:
    """The core/v1 API on this test's simulator (see ``api_client``)."""
    return client.CoreV1Api(api_client)


@pytest.fixture
def core(api: client.CoreV1Api) -> client.CoreV1Api:
    return api


@pytest.fixture
def namespace(core: client.CoreV1Api) -> str:
    """A fresh namespace for this test."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    core.create_namespace({"metadata": {"name": name}})
    return name


@pytest.fixture(scope="session")
def http(sim: ThreadSimulator) -> Iterator[urllib3.PoolManager]:
    """A pool that trusts the simulator's CA and sends its bearer token."""
    pool = urllib3.PoolManager(ca_certs=sim.ca_file, headers=sim.auth_headers())
    yield pool
    pool.clear()


class Raw:
    """Plain HTTP against the simulator, to see bodies and codes exactly as sent."""

    def __init__(self, pool: urllib3.PoolManager, url: str) -> None:
        self.pool = pool
        self.url = url

    def request(
        self,
        method: str,
        path: str,
        body: bytes | dict[str, Any] | list[Any] | None = None,
        *,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        data = body if isinstance(body, bytes) or body is None else orjson.dumps(body)
        all_headers = {**self.pool.headers, "Content-Type": content_type, **(headers or {})}
        response = self.pool.request(
            method, self.url + path, body=data, headers=all_headers, retries=False
        )
        try:
            parsed = orjson.loads(response.data) if response.data else None
        except orjson.JSONDecodeError:
            parsed = response.data.decode(errors="replace")
        return response.status, parsed


@pytest.fixture
def raw(sim: ThreadSimulator, http: urllib3.PoolManager) -> Raw:
    return Raw(http, sim.url)


@pytest.fixture
def kubeconfig(sim: ThreadSimulator, tmp_path: Path) -> Path:
    return sim.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def kubectl_bin() -> str:
    path = shutil.which("kubectl")
    if path is None:
        pytest.skip("kubectl is not installed")
    return path


def pod_body(
    name: str | None = None, *, labels: dict[str, str] | None = None, **metadata: Any
) -> dict[str, Any]:
    """A minimal valid pod."""
    meta: dict[str, Any] = dict(metadata)
    if name is not None:
        meta["name"] = name
    if labels:
        meta["labels"] = labels
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {"containers": [{"name": "main", "image": "busybox:1.36"}]},
    }


@pytest.fixture
def make_pod() -> Any:
    """`make_pod(name, labels=..., **metadata)`: a minimal valid pod body."""
    return pod_body
