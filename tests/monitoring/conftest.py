"""Fixtures for monitoring tests: a stand-in worker parent serving the per-host endpoint, and
child processes that record into its multiprocess directory. All are real processes; the test
process itself never imports prometheus_client in multiprocess mode."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from worker_host import PROGRAMS, WorkerHost


@pytest.fixture
def worker_host(tmp_path: Path, redis_url: str) -> Iterator[WorkerHost]:
    directory = tmp_path / "metrics"
    env = {**os.environ, "PODFLEET_METRICS_DIR": str(directory), "PODFLEET_REDIS_URL": redis_url,
           "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    server = subprocess.Popen(
        [sys.executable, str(PROGRAMS / "serve_worker_metrics.py")],
        env={k: v for k, v in env.items() if k != "PROMETHEUS_MULTIPROC_DIR"},
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    port = int(server.stdout.readline())
    host = WorkerHost(directory=directory, env=env, server=server, port=port)
    yield host
    host.close()
