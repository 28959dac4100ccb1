"""Fixtures for the launcher tests: the simulator as a separate process, real worker processes.

Launch messages are made here directly (``LaunchBatch.seal`` + ``enqueue_envelopes``), as the
executor makes them, and outcomes are read from the executor's Redis event stream and from the
simulator (its admin stats and a pod list), never from inside the workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from launcher_support import Fleet, sim_config
from session_simulator import clean_simulator, session_simulator

from podfleet.simulator.server import RunningSimulator


@pytest.fixture(scope="session")
def simulator() -> Iterator[RunningSimulator]:
    yield from session_simulator(sim_config())


@pytest.fixture
def sim(simulator: RunningSimulator) -> Iterator[RunningSimulator]:
    """The session simulator with no faults and fresh stats."""
    yield from clean_simulator(simulator)


@pytest.fixture
def fleet(redis_url: str, sim: RunningSimulator, tmp_path: Path) -> Iterator[Fleet]:
    world = Fleet(redis_url, sim, tmp_path)
    yield world
    world.close()
