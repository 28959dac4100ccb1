"""The simulator a test folder shares for its whole session (a separate process), and the
per-test view of it: no faults and fresh stats when the test starts, no faults left after."""

from __future__ import annotations

from collections.abc import Iterator

from podfleet.simulator.config import SimulatorConfig
from podfleet.simulator.server import RunningSimulator, start_simulator


def session_simulator(config: SimulatorConfig) -> Iterator[RunningSimulator]:
    """Body of a session fixture: the simulator in a process of its own, stopped at the end."""
    sim = start_simulator(config, mode="process")
    yield sim
    sim.stop()


def clean_simulator(simulator: RunningSimulator) -> Iterator[RunningSimulator]:
    """Body of a per-test fixture: ``simulator`` with no faults and fresh stats, and no fault
    a test injected left for the next one."""
    simulator.admin.clear_faults()
    simulator.admin.reset_stats()
    yield simulator
    simulator.admin.clear_faults()
