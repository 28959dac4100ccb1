"""Fixtures shared by the watcher tests: a Redis client and a fresh key prefix per test, and a
thread-mode fast simulator of the test's own with a kube client on it (a module that needs the
simulator in a process of its own overrides ``sim``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis
from watcher_support import fast_simulator

from podfleet.contracts.redis_keys import RedisKeys
from podfleet.kube.client import KubeClient
from podfleet.simulator.server import RunningSimulator


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url)
    yield c
    c.close()


@pytest.fixture
def keys() -> RedisKeys:
    """A key prefix of this test's own, so tests sharing the session Redis do not meet."""
    return RedisKeys(f"t{uuid.uuid4().hex[:8]}")


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    simulator = fast_simulator()
    yield simulator
    simulator.stop()


@pytest.fixture
def kube(sim: RunningSimulator) -> Iterator[KubeClient]:
    made = KubeClient(sim.api_client(), timeout_seconds=5)
    yield made
    made.close()
