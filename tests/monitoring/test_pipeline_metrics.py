"""Run the real pipeline (executor → Redis → worker processes → simulator → watcher → executor)
and check that the workers' one per-host endpoint adds up to what the cluster saw."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from prom_scrape import Samples, scrape, value

from podfleet.local.ports import free_port, wait_for_port
from podfleet.simulator.cluster.config import ClusterConfig
from podfleet.simulator.config import SimulatorConfig
from podfleet.simulator.server import RunningSimulator, start_simulator

PODFLEET = str(Path(sys.executable).with_name("podfleet"))
TASKS = 24
NAMESPACE = "default"


@pytest.fixture
def simulator() -> Iterator[RunningSimulator]:
    sim = start_simulator(SimulatorConfig(
        default_termination_grace_period_s=1,
        cluster=ClusterConfig(nodes=5, node_pods=200, schedule_delay_s=0.01,
                              container_start_delay_s=0.05, default_run_time_s=0.2)),
        mode="process")
    yield sim
    sim.stop()


@pytest.fixture
def pipeline_env(tmp_path: Path, redis_url: str, simulator: RunningSimulator) -> dict[str, str]:
    kubeconfig = simulator.write_kubeconfig(tmp_path / "kubeconfig")
    return {
        "PODFLEET_REDIS_URL": redis_url,
        "PODFLEET_KUBECONFIG": str(kubeconfig),
        "PODFLEET_SIGNING_KEY": "monitoring-tests-signing-key-0123",
        "PODFLEET_DATABASE_URL": f"sqlite:///{tmp_path / 'podfleet.sqlite'}",
        "PODFLEET_EXECUTOR_ID": f"ex-{uuid.uuid4().hex[:8]}",
        "PODFLEET_METRICS_PORT": str(free_port()),
        "PODFLEET_METRICS_DIR": str(tmp_path / "metrics"),
        "PODFLEET_LAUNCH_RATE": "0",
        "PODFLEET_WATCHER_LEASE_SECONDS": "3",
        "PODFLEET_BROKER_HEARTBEAT_TIMEOUT_SECONDS": "3",
    }


@pytest.fixture
def worker(pipeline_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """`podfleet worker` with two processes; yields its metrics URL."""
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(pipeline_env)
    with open(tmp_path / "worker.log", "wb") as log:
        process = subprocess.Popen([PODFLEET, "worker", "--processes", "2", "--threads", "4"],
                                   env=env, stdout=log, stderr=subprocess.STDOUT)
    port = int(pipeline_env["PODFLEET_METRICS_PORT"])
    try:
        wait_for_port("127.0.0.1", port, timeout=30)
        yield f"http://127.0.0.1:{port}/metrics"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of ``name`` over every label set that includes ``labels``."""
    return sum(v for (n, lbls), v in samples.items()
               if n == name and labels.items() <= dict(lbls).items())


def _wait_until(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.mark.slow
def test_worker_endpoint_adds_up_to_what_the_cluster_saw(
        pipeline_env: dict[str, str], simulator: RunningSimulator, worker: str) -> None:
    from prometheus_client import REGISTRY

    from podfleet.executor.executor import Executor
    from podfleet.executor.migrate import upgrade
    from podfleet.executor.submission import TaskSubmission
    from podfleet.settings import Settings

    # Given an executor and a worker pool on the simulator
    settings = Settings.from_env(pipeline_env)
    upgrade(settings.database.url)
    executor = Executor(settings)
    executor.start()
    run_id = f"run-{uuid.uuid4().hex[:6]}"
    finished: dict[object, object] = {}
    try:
        # When it runs a batch of tasks to completion
        executor.submit_many([TaskSubmission(("metrics_dag", f"t{i}", run_id, -1, 1), ["true"])
                              for i in range(TASKS)])

        def all_finished() -> bool:
            executor.sync()
            for key, (state, _info) in executor.get_event_buffer().items():
                if state.is_terminal:
                    finished[key] = state
            return len(finished) == TASKS

        _wait_until(all_finished, 90, f"{TASKS} tasks to finish")
    finally:
        executor.terminate()
    assert {str(s) for s in finished.values()} == {"success"}

    # Then the pods the workers counted are the pods the cluster accepted
    stats = simulator.admin.stats()
    samples = scrape(worker)
    assert stats.creates.accepted == TASKS
    assert _total(samples, "podfleet_pods_created_total", outcome="created") == TASKS
    assert _total(samples, "podfleet_launch_latency_seconds_count") == TASKS
    assert _total(samples, "podfleet_kube_requests_total", verb="create", code="201") == \
        stats.requests["create"][201]
    # ... and the watcher's own calls are counted too: its list, its watch, its deletes
    assert _total(samples, "podfleet_kube_requests_total", verb="list", code="200") >= 1
    assert _total(samples, "podfleet_kube_requests_total", verb="watch", code="200") >= 1
    _wait_until(lambda: _total(scrape(worker), "podfleet_kube_requests_total", verb="delete")
                == sum(simulator.admin.stats().requests.get("delete", {}).values()) > 0,
                30, "every delete to be counted")
    # Every launch message waited in the queue once and was processed once, in some process
    launches = _total(samples, "dramatiq_messages_total", actor_name="podfleet_launch")
    assert launches >= 1
    assert _total(samples, "podfleet_queue_wait_seconds_count", queue="podfleet.launch") == \
        launches
    # The broker is drained, nothing was dead-lettered, one process holds the watcher lease
    assert value(samples, "podfleet_broker_up") == 1
    assert value(samples, "podfleet_broker_queue_depth", queue="podfleet.launch") == 0
    assert value(samples, "podfleet_broker_dead_letters", queue="podfleet.launch") == 0
    assert value(samples, "podfleet_watcher_lease_held") == 1
    # And the executor (this process) counted the same tasks end to end
    labels = {"executor": settings.executor.executor_id}
    assert REGISTRY.get_sample_value("podfleet_tasks_submitted_total", labels) == TASKS


def _has_series(url: str, name: str, **labels: str) -> bool:
    return any(n == name and labels.items() <= dict(lbls).items()
               for (n, lbls) in scrape(url))


def test_a_fresh_worker_exports_every_known_failure_series_at_zero(worker: str) -> None:
    # Before any task ran, the series that alerts take rate() of must already exist, or the
    # first failure of each kind is invisible to rate()
    _wait_until(lambda: _has_series(worker, "podfleet_pods_created_total", outcome="invalid"),
                30, "the workers to boot")
    samples = scrape(worker)
    for outcome in ("created", "invalid", "failed", "expired"):
        assert value(samples, "podfleet_pods_created_total", namespace=NAMESPACE,
                     outcome=outcome) == 0
    assert value(samples, "podfleet_launch_retries_total", reason="429") == 0
    assert value(samples, "podfleet_messages_rejected_total", reason="signature") == 0
    assert value(samples, "podfleet_watch_restarts_total", reason="expired") == 0
    assert value(samples, "podfleet_task_events_published_total", source="watcher",
                 state="failed") == 0
    assert value(samples, "dramatiq_message_errors_total", queue_name="podfleet.launch",
                 actor_name="podfleet_launch") == 0


def test_an_executor_exports_its_event_results_at_zero(pipeline_env: dict[str, str]) -> None:
    # In a process of its own: this test process's registry has seen other tests' events
    from podfleet.executor.migrate import upgrade

    upgrade(pipeline_env["PODFLEET_DATABASE_URL"])
    program = ("from prometheus_client import REGISTRY, generate_latest\n"
               "from podfleet.executor.executor import Executor\n"
               "executor = Executor()\n"
               "print(generate_latest(REGISTRY).decode())\n"
               "executor.terminate()\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PODFLEET_", "PROMETHEUS"))}
    result = subprocess.run([sys.executable, "-c", program], env={**env, **pipeline_env},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for outcome in ("applied", "stale", "terminal", "malformed"):
        assert f'podfleet_executor_events_total{{result="{outcome}"}} 0.0' in result.stdout
    executor_id = pipeline_env["PODFLEET_EXECUTOR_ID"]
    assert f'podfleet_tasks_submitted_total{{executor="{executor_id}"}} 0.0' in result.stdout
