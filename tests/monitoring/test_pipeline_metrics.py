"""Run the real pipeline (executor → Redis → worker processes → simulator → watcher → executor)
and check that the workers' one per-host endpoint adds up to what the cluster saw."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path

import pytest
from prom_scrape import Samples, scrape, value

from podfleet.contracts.events import EventSource
from podfleet.contracts.states import TaskState
from podfleet.local.fleet import LocalFleet
from podfleet.local.ports import free_port, wait_for_port
from podfleet.local.waiting import wait_for
from podfleet.monitoring.metrics import (
    KubeVerb,
    LaunchRetryReason,
    LogArchiveResult,
    MessageRejectReason,
    PodCreateOutcome,
    PodDeleteResult,
    WatchEventType,
    WatchRestartReason,
)
from podfleet.simulator.cluster.config import ClusterConfig
from podfleet.simulator.config import SimulatorConfig
from podfleet.simulator.server import RunningSimulator

TASKS = 24
NAMESPACE = "default"


@pytest.fixture
def fleet(tmp_path: Path, redis_url: str) -> Iterator[LocalFleet]:
    """A local fleet of its own (simulator, SQLite), with a metrics port for its workers."""
    with LocalFleet(
            workdir=tmp_path, redis_url=redis_url, metrics_port=free_port(),
            signing_key="monitoring-tests-signing-key-0123",
            simulator=SimulatorConfig(default_termination_grace_period_s=1, cluster=ClusterConfig(
                nodes=5, node_pods=200, schedule_delay_s=0.01, container_start_delay_s=0.05,
                default_run_time_s=0.2)),
            env={
                "PODFLEET_EXECUTOR_ID": f"ex-{uuid.uuid4().hex[:8]}",
                "PODFLEET_METRICS_DIR": str(tmp_path / "metrics"),
                "PODFLEET_LAUNCH_RATE": "0",
                "PODFLEET_WATCHER_LEASE_SECONDS": "3",
                "PODFLEET_BROKER_HEARTBEAT_TIMEOUT_SECONDS": "3",
            }) as local:
        yield local


@pytest.fixture
def simulator(fleet: LocalFleet) -> RunningSimulator:
    assert fleet.simulator is not None
    return fleet.simulator


@pytest.fixture
def pipeline_env(fleet: LocalFleet) -> dict[str, str]:
    return fleet.env


@pytest.fixture
def worker(fleet: LocalFleet) -> str:
    """`podfleet worker` with two processes; its metrics URL once it serves."""
    fleet.workers.start(2, 4)
    port = int(fleet.env["PODFLEET_METRICS_PORT"])
    wait_for_port("127.0.0.1", port, timeout=30)
    return f"http://127.0.0.1:{port}/metrics"


def _series(samples: Samples, name: str, **labels: str) -> list[float]:
    """Values of every ``name`` series whose labels include ``labels``."""
    return [v for (n, lbls), v in samples.items()
            if n == name and labels.items() <= dict(lbls).items()]


def _total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of ``name`` over every label set that includes ``labels``."""
    return sum(v for (n, lbls), v in samples.items()
               if n == name and labels.items() <= dict(lbls).items())


@pytest.mark.slow
def test_worker_endpoint_adds_up_to_what_the_cluster_saw(
        pipeline_env: dict[str, str], simulator: RunningSimulator, worker: str) -> None:
    from prometheus_client import REGISTRY

    from podfleet.executor.executor import Executor
    from podfleet.executor.submission import TaskSubmission
    from podfleet.settings import Settings

    # Given an executor and a worker pool on the simulator
    settings = Settings.from_env(pipeline_env)
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

        wait_for(all_finished, 90, f"{TASKS} tasks to finish", interval=0.2)
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
    # ... and the watcher's own calls are counted too: its list, its watch, its deletes (a
    # DeleteCollection per batch of finished pods)
    assert _total(samples, "podfleet_kube_requests_total", verb="list", code="200") >= 1
    assert _total(samples, "podfleet_kube_requests_total", verb="watch", code="200") >= 1
    wait_for(lambda: _total(scrape(worker), "podfleet_kube_requests_total",
                            verb="deletecollection")
                == sum(simulator.admin.stats().requests.get("deletecollection", {}).values()) > 0,
                30, "every delete to be counted", interval=0.2)
    # Every launch message waited in the queue once and was processed once, in some process
    launches = _total(samples, "dramatiq_messages_total", actor_name="podfleet_launch")
    assert launches >= 1
    assert _total(samples, "podfleet_queue_wait_seconds_count", queue="podfleet.launch") == \
        launches
    # The broker is drained, nothing was dead-lettered, one process holds the watcher lease
    assert value(samples, "podfleet_broker_up") == 1
    assert value(samples, "podfleet_broker_queue_depth", queue="podfleet.launch") == 0
    assert value(samples, "podfleet_broker_dead_letters", queue="podfleet.launch") == 0
    assert value(samples, "podfleet_watcher_lease_held", cluster="default") == 1
    # And the executor (this process) counted the same tasks end to end
    labels = {"executor": settings.executor.executor_id}
    assert REGISTRY.get_sample_value("podfleet_tasks_submitted_total", labels) == TASKS


def _has_series(url: str, name: str, **labels: str) -> bool:
    return any(n == name and labels.items() <= dict(lbls).items()
               for (n, lbls) in scrape(url))


# Every closed set of label values a worker records, by the metric and label it fills.
WORKER_LABEL_SETS: list[tuple[str, str, type[StrEnum]]] = [
    ("podfleet_pods_created_total", "outcome", PodCreateOutcome),
    ("podfleet_launch_retries_total", "reason", LaunchRetryReason),
    ("podfleet_messages_rejected_total", "reason", MessageRejectReason),
    ("podfleet_watch_events_total", "type", WatchEventType),
    ("podfleet_watch_restarts_total", "reason", WatchRestartReason),
    ("podfleet_pods_deleted_total", "result", PodDeleteResult),
    ("podfleet_pod_logs_archived_total", "result", LogArchiveResult),
    ("podfleet_task_events_published_total", "source", EventSource),
    ("podfleet_task_events_published_total", "state", TaskState),
    ("podfleet_kube_request_duration_seconds_count", "verb", KubeVerb),
]
# The watcher lists, then watches, as soon as a worker boots and takes the lease (and a
# periodic relist lists again): those series exist, but need not still be at zero.
USED_AT_BOOT = {("podfleet_kube_request_duration_seconds_count", KubeVerb.LIST),
                ("podfleet_kube_request_duration_seconds_count", KubeVerb.WATCH)}


def test_a_fresh_worker_exports_every_enumerated_label_value_at_zero(worker: str) -> None:
    # Before any task ran, the series that alerts take rate() of must already exist, or the
    # first failure of each kind is invisible to rate()
    wait_for(lambda: _has_series(worker, "podfleet_pods_created_total", outcome="invalid"),
                30, "the workers to boot", interval=0.2)
    samples = scrape(worker)
    not_at_zero = [
        f"{name}{{{label}={member.value!r}}}"
        for name, label, values in WORKER_LABEL_SETS for member in values
        if (series := _series(samples, name, **{label: member.value})) == [] or (
            any(series) and (name, member) not in USED_AT_BOOT)]
    assert not_at_zero == []
    assert value(samples, "dramatiq_message_errors_total", queue_name="podfleet.launch",
                 actor_name="podfleet_launch") == 0


def test_an_executor_exports_its_event_results_at_zero(pipeline_env: dict[str, str]) -> None:
    # In a process of its own: this test process's registry has seen other tests' events
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
