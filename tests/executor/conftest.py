"""Fixtures for the executor's tests: a migrated PostgreSQL DB emptied per test, Redis,
the cluster simulator (a namespace per test), the settings of a local fleet on them, and
executors built on those.

Pods are created in the simulator directly, as the launcher would create them, and task events
are published to the executor's stream with ``publish_events``, as the watcher would: these
tests cover the executor alone, against real servers.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from executor_support import SIGNING_KEY, Clock, start_held_simulator
from kubernetes import client as k8s_client

from podfleet.executor import Executor
from podfleet.kube.client import KubeClient
from podfleet.local.fleet import LocalFleet
from podfleet.settings import Settings
from podfleet.simulator.server import ThreadSimulator


@pytest.fixture(scope="session")
def simulator() -> Iterator[ThreadSimulator]:
    sim = start_held_simulator()
    assert isinstance(sim, ThreadSimulator)
    yield sim
    sim.stop()


@pytest.fixture
def kube(simulator: ThreadSimulator) -> Iterator[KubeClient]:
    kube_client = KubeClient(simulator.api_client())
    yield kube_client
    kube_client.close()


@pytest.fixture
def namespace(kube: KubeClient) -> str:
    name = f"t-{uuid.uuid4().hex[:10]}"
    kube.request("POST", "/api/v1/namespaces", body={"metadata": {"name": name}})
    return name


@pytest.fixture
def fleet(simulator: ThreadSimulator, database_url: str, redis_url: str, namespace: str,
          tmp_path: Path) -> Iterator[LocalFleet]:
    """The executor's side of a local fleet on this test's servers: its settings, and no
    workers (the tests play them)."""
    with LocalFleet(workdir=tmp_path, simulator=simulator, redis_url=redis_url,
                    database_url=database_url, migrate=False, namespace=namespace,
                    signing_key=SIGNING_KEY, env={
                        "PODFLEET_BATCH_SIZE": "50",
                        "PODFLEET_PARALLELISM": "0",
                        "PODFLEET_HEARTBEAT_SECONDS": "5",
                        "PODFLEET_HEARTBEAT_TIMEOUT_SECONDS": "60",
                    }) as local:
        yield local


@pytest.fixture
def environment(fleet: LocalFleet) -> dict[str, str]:
    return fleet.env


from executor_support import ExecutorFactory  # noqa: E402


@pytest.fixture
def make_executor(environment: dict[str, str], kube: KubeClient
                  ) -> Iterator[ExecutorFactory]:
    """Build executors on this test's servers; ``**env`` overrides PODFLEET_* variables
    (lower-case names without the prefix: ``parallelism=3``)."""
    made: list[Executor] = []

    def build(clock: Clock | None = None, redis_url: str | None = None,
              **env: Any) -> Executor:
        values = dict(environment)
        if redis_url:
            values["PODFLEET_REDIS_URL"] = redis_url
        values.update({f"PODFLEET_{k.upper()}": str(v) for k, v in env.items()})
        executor = Executor(Settings.from_env(values), kube=_kube_copy(kube),
                            clock=clock or Clock())
        made.append(executor)
        return executor

    yield build
    for executor in made:
        with contextlib.suppress(Exception):  # already stopped, fenced, or Redis killed
            executor.terminate()


def _kube_copy(kube: KubeClient) -> KubeClient:
    return KubeClient(k8s_client.ApiClient(kube.configuration))


