"""The local fleet harness: it starts a whole podfleet, a task runs through it, and closing it
leaves nothing it started behind, and nothing it was given stopped."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from podfleet.contracts.keys import TaskKey
from podfleet.contracts.states import TaskState
from podfleet.executor import Executor, TaskSubmission
from podfleet.local.fleet import LocalFleet
from podfleet.local.redis_server import RedisServer
from podfleet.local.waiting import wait_for
from podfleet.simulator.cluster import fate
from podfleet.simulator.cluster.config import ClusterConfig
from podfleet.simulator.config import SimulatorConfig
from podfleet.simulator.server import start_simulator

FAST = SimulatorConfig(default_termination_grace_period_s=1, cluster=ClusterConfig(
    nodes=2, schedule_delay_s=0.01, container_start_delay_s=0.05, default_run_time_s=0.2))


def _gone(pid: int, *, group: bool = False) -> bool:
    """Whether no process (with ``group``: no process of the group ``pid`` leads) is left."""
    try:
        (os.killpg if group else os.kill)(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_a_task_runs_through_the_fleet_and_nothing_it_started_outlives_it() -> None:
    # Given a fleet of its own: simulator, Redis, SQLite, and one worker pool
    with LocalFleet(simulator=FAST, env={"PODFLEET_PARALLELISM": "0",
                                         "PODFLEET_WATCHER_LEASE_SECONDS": "2"}) as fleet:
        pool = fleet.workers.start(threads=2)
        fleet.workers.wait_for_watcher(pool, timeout=60)
        assert fleet.simulator is not None and fleet.redis_server is not None
        simulator_pid = fleet.simulator.process.pid  # type: ignore[attr-defined]
        redis_pid = fleet.redis_server.pid
        assert redis_pid is not None
        workdir = fleet.workdir

        # When an executor on its settings runs a task
        key = TaskKey("fleet", "task", "run-1", -1, 1)
        executor = Executor(fleet.settings({"PODFLEET_EXECUTOR_ID": "fleet-test"}))
        try:
            executor.start()
            executor.submit_many([TaskSubmission(
                key, ["true"], executor_config={"annotations": {fate.DURATION: "0.1"}})])

            def final_state() -> TaskState | None:
                executor.sync()
                state = executor.get_event_buffer().get(key, (None, None))[0]
                return state if state is not None and state.is_terminal else None

            state = wait_for(final_state, 60, "the task to finish")
        finally:
            executor.terminate()

    # Then it succeeded, and no process or file of the fleet's is left
    assert state is TaskState.SUCCESS
    assert _gone(simulator_pid) and _gone(redis_pid)
    assert _gone(pool.pid, group=True), "a process of the worker pool outlived the fleet"
    assert not workdir.exists()


def test_what_the_fleet_was_given_it_leaves_running(private_redis: RedisServer,
                                                    tmp_path: Path) -> None:
    # Given a simulator, a Redis and a directory of the caller's
    with start_simulator(FAST) as simulator:
        fleet = LocalFleet(workdir=tmp_path / "fleet", simulator=simulator,
                           redis_url=private_redis.url, migrate=False)

        # When a fleet on them starts and closes
        with fleet:
            assert fleet.env["PODFLEET_REDIS_URL"] == private_redis.url
            assert fleet.redis_server is None

        # Then they are all still there
        assert simulator.admin.stats().resource_version > 0
        assert private_redis.running
        assert (tmp_path / "fleet" / "kubeconfig").exists()


def test_a_fleet_that_cannot_start_stops_what_it_had_started() -> None:
    # Given a fleet whose database cannot be reached (nothing listens on port 1)
    fleet = LocalFleet(simulator=FAST,
                       database_url="postgresql+psycopg://nobody@127.0.0.1:1/podfleet")

    # When it starts, it fails at the database ...
    with pytest.raises(sa.exc.OperationalError):
        fleet.start()

    # ... and the simulator and Redis it had started are stopped, its directory gone
    assert fleet.simulator is not None and fleet.redis_server is not None
    assert fleet.simulator.process.poll() is not None  # type: ignore[attr-defined]
    assert not fleet.redis_server.running
    assert not fleet.workdir.exists()


def test_the_callers_podfleet_variables_reach_the_fleet_only_when_it_inherits(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, redis_url: str) -> None:
    # Given a PODFLEET_* variable in this process's environment
    monkeypatch.setenv("PODFLEET_LAUNCH_RATE", "7")
    def fleet(inherit_env: bool) -> LocalFleet:
        # Nothing to start: the cluster and Redis are given, and no executor needs the DB
        return LocalFleet(workdir=tmp_path, kubeconfig=tmp_path / "kubeconfig",
                          redis_url=redis_url, migrate=False, inherit_env=inherit_env)

    # Then a fleet leaves it out of its processes and settings ...
    with fleet(inherit_env=False) as sealed:
        assert "PODFLEET_LAUNCH_RATE" not in sealed.workers.environment()
        assert sealed.settings().launch.rate != 7
    # ... and a fleet that inherits passes it on, under the fleet's own pieces
    with fleet(inherit_env=True) as inheriting:
        assert inheriting.workers.environment()["PODFLEET_LAUNCH_RATE"] == "7"
        assert inheriting.settings().launch.rate == 7
        assert inheriting.environment()["PODFLEET_REDIS_URL"] == redis_url
