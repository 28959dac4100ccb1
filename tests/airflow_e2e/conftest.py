"""Fixtures of the Airflow end-to-end tests: one real Airflow deployment per session.

These tests run only in the Airflow virtualenv (``scripts/airflow-venv.sh``); elsewhere the
folder is not collected. The stack is shared by the module's tests: each triggers its own DAG
runs, so they do not see each other's tasks.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

try:
    import airflow.executors.base_executor  # noqa: F401  (the real Airflow, not a folder)
except ImportError:
    collect_ignore_glob = ["*"]
else:
    from airflow_support import SIGNING_KEY, AirflowStack
    from otlp_receiver import OtlpReceiver

    from podfleet.local.fleet import LocalFleet
    from podfleet.local.postgres import ScratchDatabase
    from podfleet.local.redis_server import RedisServer
    from podfleet.simulator.server import RunningSimulator

    DAGS = Path(__file__).resolve().parent / "dags"

    @pytest.fixture(scope="session")
    def airflow_database_url(postgres_database_url: str) -> Iterator[str]:
        """A second database beside podfleet's, for Airflow's own metadata."""
        with ScratchDatabase(postgres_database_url, prefix="airflow_test") as scratch:
            yield scratch.url

    @pytest.fixture(scope="session")
    def airflow_stack(tmp_path_factory: pytest.TempPathFactory, postgres_database_url: str,
                      airflow_database_url: str, redis_server: RedisServer
                      ) -> Iterator[AirflowStack]:
        home = tmp_path_factory.mktemp("airflow-home")
        markers = home / "markers"
        markers.mkdir()
        # podfleet's side of the deployment (settings, migrated DB) as a local fleet; its
        # cluster is the simulator started below, whose kubeconfig goes where the fleet says.
        fleet = LocalFleet(
            workdir=home, kubeconfig=home / "kubeconfig", redis_url=redis_server.url,
            database_url=postgres_database_url, signing_key=SIGNING_KEY,
            redis_prefix=f"af-{uuid.uuid4().hex[:8]}", env={
                "PODFLEET_LAUNCH_RATE": "50",
                "PODFLEET_HEARTBEAT_SECONDS": "1",
                "PODFLEET_HEARTBEAT_TIMEOUT_SECONDS": "30",
                "PODFLEET_WATCHER_LEASE_SECONDS": "3",
                "PODFLEET_LOG_ARCHIVE": str(home / "pod-logs"),
                # Failed pods are kept (their logs are then read from the pod itself).
                "PODFLEET_DELETE_POLICY": "on_success",
            }).start()
        # Airflow traces (scheduler, task) and so does podfleet, to one receiver on loopback.
        receiver = OtlpReceiver().__enter__()
        stack = AirflowStack(home=home, dags=DAGS, database_url=airflow_database_url,
                             podfleet_env=fleet.env,
                             extra_env={"PF_MARKERS": str(markers),
                                        "AIRFLOW__TRACES__OTEL_ON": "True",
                                        "OTEL_TRACES_EXPORTER": "otlp_proto_http",
                                        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.endpoint})
        sim = stack.start_simulator(fleet.kubeconfig, nodes=4, node_pods=200)
        stack.sim = sim  # type: ignore[attr-defined]
        stack.markers = markers  # type: ignore[attr-defined]
        stack.traces = receiver  # type: ignore[attr-defined]
        try:
            stack.boot()
            yield stack
        finally:
            stack.stop()
            sim.stop()
            fleet.close()
            receiver.__exit__(None, None, None)

    @pytest.fixture
    def sim(airflow_stack: AirflowStack) -> RunningSimulator:
        simulator: RunningSimulator = airflow_stack.sim  # type: ignore[attr-defined]
        return simulator
