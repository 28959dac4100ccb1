"""Fixtures of the whole-pipeline tests: a migrated PostgreSQL DB emptied per test, the
simulator as a separate process (a namespace per test), and a :class:`Pipeline` (a local
fleet) on them.

Redis is the session's private server (flushed per test; each pipeline also has its own key
prefix) or, for tests that kill it, the test's own ``private_redis``.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pipeline_support import Pipeline, open_pipeline, sim_config
from session_simulator import clean_simulator, session_simulator

from podfleet.kube.client import KubeClient
from podfleet.local.redis_server import RedisServer
from podfleet.simulator.server import RunningSimulator


@pytest.fixture(scope="session")
def pipeline_simulator() -> Iterator[RunningSimulator]:
    yield from session_simulator(sim_config())


@pytest.fixture
def sim(pipeline_simulator: RunningSimulator) -> Iterator[RunningSimulator]:
    """The session simulator with no faults and fresh stats."""
    yield from clean_simulator(pipeline_simulator)


def _new_namespace(sim: RunningSimulator, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    kube = KubeClient(sim.api_client())
    try:
        kube.request("POST", "/api/v1/namespaces", body={"metadata": {"name": name}})
    finally:
        kube.close()
    return name


@pytest.fixture
def namespace(sim: RunningSimulator) -> str:
    return _new_namespace(sim, "p")


@pytest.fixture
def pipeline(sim: RunningSimulator, database_url: str, redis_url: str,
             namespace: str, tmp_path: Path) -> Iterator[Pipeline]:
    yield from open_pipeline(sim, database_url, redis_url, namespace, tmp_path)


@pytest.fixture(scope="session")
def local_simulator() -> Iterator[RunningSimulator]:
    """A simulator in local mode: each pod's command really runs, as a subprocess."""
    config = sim_config()
    yield from session_simulator(dataclasses.replace(
        config, cluster=dataclasses.replace(config.cluster, local_mode=True)))


@pytest.fixture
def local_pipeline(local_simulator: RunningSimulator, database_url: str,
                   redis_url: str, tmp_path: Path) -> Iterator[Pipeline]:
    """A pipeline on the local-mode simulator, in a namespace of its own."""
    yield from open_pipeline(local_simulator, database_url, redis_url,
                             _new_namespace(local_simulator, "l"), tmp_path)


@pytest.fixture
def private_pipeline(sim: RunningSimulator, database_url: str,
                     private_redis: RedisServer, namespace: str,
                     tmp_path: Path) -> Iterator[Pipeline]:
    """A pipeline on a Redis of its own, which the test may kill and restart."""
    yield from open_pipeline(sim, database_url, private_redis.url, namespace, tmp_path)
