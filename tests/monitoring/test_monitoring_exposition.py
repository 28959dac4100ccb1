"""The per-host /metrics endpoint adds up every worker process's metrics (multiprocess mode)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from prom_scrape import scrape, value
from worker_host import WorkerHost


def test_counters_from_several_processes_add_up(worker_host: WorkerHost) -> None:
    # Given three worker children that each created some pods and exited
    for created in (3, 4, 5):
        worker_host.child("team-a", created)

    # When Prometheus scrapes the host's one endpoint
    samples = scrape(worker_host.url)

    # Then the counter is the sum over all processes
    assert value(samples, "podfleet_pods_created_total", cluster="default",
                 namespace="team-a", outcome="created") == 12


def test_histograms_from_several_processes_add_up(worker_host: WorkerHost) -> None:
    # Given two children that observed 2 and 3 launch latencies
    worker_host.child("team-b", 2)
    worker_host.child("team-b", 3)

    # When scraped
    samples = scrape(worker_host.url)

    # Then count, sum and the +Inf bucket cover all five observations
    assert value(samples, "podfleet_launch_latency_seconds_count", namespace="team-b") == 5
    assert value(samples, "podfleet_launch_latency_seconds_bucket",
                 namespace="team-b", le="+Inf") == 5
    total = value(samples, "podfleet_launch_latency_seconds_sum", namespace="team-b")
    assert total is not None and abs(total - (0.1 + 0.2 + 0.1 + 0.2 + 0.3)) < 1e-9


def test_live_gauge_counts_only_running_processes(worker_host: WorkerHost) -> None:
    # Given two running children that both report holding the lease (a split brain)
    first = worker_host.child("ns", 0, lease=1, hold=True)
    worker_host.child("ns", 0, lease=1, hold=True)
    assert value(scrape(worker_host.url), "podfleet_watcher_lease_held", cluster="default") == 2

    # When one is SIGKILLed without anyone calling mark_process_dead
    first.kill()
    first.wait(timeout=10)

    # Then the next scrape no longer counts it
    assert value(scrape(worker_host.url), "podfleet_watcher_lease_held", cluster="default") == 1


def test_counters_of_exited_processes_are_kept(worker_host: WorkerHost) -> None:
    # Given a child that created pods and was then killed
    proc = worker_host.child("ns", 7, hold=True)
    proc.kill()
    proc.wait(timeout=10)

    # When scraped afterwards
    samples = scrape(worker_host.url)

    # Then its pods still count: totals never go backwards when a process dies
    assert value(samples, "podfleet_pods_created_total", cluster="default", namespace="ns",
                 outcome="created") == 7


def test_prepare_empties_a_reused_directory(tmp_path: Path) -> None:
    # Given a configured directory holding a previous run's file
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "counter_12345.db").write_bytes(b"old")

    # When a new worker command prepares it
    code = (
        "from podfleet.monitoring.exposition import prepare_multiprocess_dir\n"
        f"print(prepare_multiprocess_dir(path={str(directory)!r}))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={k: v for k, v in os.environ.items()
                                          if k != "PROMETHEUS_MULTIPROC_DIR"})

    # Then the stale file is gone and the directory is the one exported
    assert out.stdout.strip() == str(directory)
    assert list(directory.iterdir()) == []


def test_prepare_refuses_after_a_single_process_import() -> None:
    # Given a process that imported the metrics before preparing the directory
    code = (
        "import podfleet.monitoring.metrics\n"
        "from podfleet.monitoring.exposition import prepare_multiprocess_dir, "
        "MultiprocessSetupError\n"
        "try:\n    prepare_multiprocess_dir()\nexcept MultiprocessSetupError:\n"
        "    print('refused')\n")
    # When it prepares the directory
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={k: v for k, v in os.environ.items()
                                          if k != "PROMETHEUS_MULTIPROC_DIR"})
    # Then it is told, instead of silently exporting nothing
    assert out.stdout.strip() == "refused"
