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

from podfleet.simulator.server import RunningSimulator, start_simulator


@pytest.fixture(scope="session")
def simulator() -> Iterator[RunningSimulator]:
    sim = start_simulator(sim_config(), mode="process")
    yield sim
    sim.stop()


@pytest.fixture
def sim(simulator: RunningSimulator) -> Iterator[RunningSimulator]:
    """The session simulator with no faults and fresh stats."""
    simulator.admin.clear_faults()
    simulator.admin.reset_stats()
    yield simulator
    simulator.admin.clear_faults()


@pytest.fixture
def fleet(redis_url: str, sim: RunningSimulator, tmp_path: Path) -> Iterator[Fleet]:
    world = Fleet(redis_url, sim, tmp_path)
    yield world
    world.close()
