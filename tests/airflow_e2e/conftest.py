"""Fixtures of the Airflow end-to-end tests: one real Airflow deployment per session.

These tests run only in the Airflow virtualenv (``scripts/airflow-venv.sh``); elsewhere the
folder is not collected. The stack is shared by the module's tests: each triggers its own DAG
runs, so they do not see each other's tasks.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

try:
    import airflow.executors.base_executor  # noqa: F401  (the real Airflow, not a folder)
except ImportError:
    collect_ignore_glob = ["*"]
else:
    import sqlalchemy as sa
    from airflow_support import SIGNING_KEY, AirflowStack

    from podfleet.executor.migrate import upgrade
    from podfleet.local.redis_server import RedisServer
    from podfleet.simulator.cluster.config import ClusterConfig
    from podfleet.simulator.config import SimulatorConfig
    from podfleet.simulator.server import RunningSimulator, start_simulator

    DAGS = Path(__file__).resolve().parent / "dags"

    @pytest.fixture(scope="session")
    def airflow_database_url(postgres_database_url: str) -> Iterator[str]:
        """A second database beside podfleet's, for Airflow's own metadata."""
        admin = sa.create_engine(postgres_database_url, isolation_level="AUTOCOMMIT")
        name = f"airflow_test_{uuid.uuid4().hex[:10]}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url = admin.url.set(database=name).render_as_string(hide_password=False)
        yield url
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 "WHERE datname = :n"), {"n": name})
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()

    @pytest.fixture(scope="session")
    def airflow_stack(tmp_path_factory: pytest.TempPathFactory, postgres_database_url: str,
                      airflow_database_url: str, redis_server: RedisServer
                      ) -> Iterator[AirflowStack]:
        home = tmp_path_factory.mktemp("airflow-home")
        markers = home / "markers"
        markers.mkdir()
        upgrade(postgres_database_url)
        podfleet_env = {
            "PODFLEET_DATABASE_URL": postgres_database_url,
            "PODFLEET_REDIS_URL": redis_server.url,
            "PODFLEET_REDIS_PREFIX": f"af-{uuid.uuid4().hex[:8]}",
            "PODFLEET_SIGNING_KEY": SIGNING_KEY,
            "PODFLEET_METRICS_PORT": "0",
            "PODFLEET_LAUNCH_RATE": "50",
            "PODFLEET_HEARTBEAT_SECONDS": "1",
            "PODFLEET_HEARTBEAT_TIMEOUT_SECONDS": "30",
            "PODFLEET_WATCHER_LEASE_SECONDS": "3",
            "PODFLEET_LOG_ARCHIVE": str(home / "pod-logs"),
        }
        stack = AirflowStack(home=home, dags=DAGS, database_url=airflow_database_url,
                             podfleet_env=podfleet_env,
                             extra_env={"PF_MARKERS": str(markers)})
        # The simulator runs each pod's command with its own environment: Airflow's settings
        # (the execution API's URL, the DAGs folder) reach the Task SDK as an image's would.
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(stack.env)
        try:
            sim = start_simulator(SimulatorConfig(
                default_termination_grace_period_s=2,
                cluster=ClusterConfig(nodes=4, node_pods=200, local_mode=True,
                                      schedule_delay_s=0.01, container_start_delay_s=0.05,
                                      termination_delay_s=0.05)), mode="process")
        finally:
            os.environ.clear()
            os.environ.update(saved)
        kubeconfig = sim.write_kubeconfig(home / "kubeconfig")
        stack.env["PODFLEET_KUBECONFIG"] = str(kubeconfig)
        stack.sim = sim  # type: ignore[attr-defined]
        stack.markers = markers  # type: ignore[attr-defined]
        try:
            stack.boot()
            yield stack
        finally:
            stack.stop()
            sim.stop()

    @pytest.fixture
    def sim(airflow_stack: AirflowStack) -> RunningSimulator:
        simulator: RunningSimulator = airflow_stack.sim  # type: ignore[attr-defined]
        return simulator
