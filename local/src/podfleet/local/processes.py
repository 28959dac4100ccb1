"""Stopping the process groups podfleet starts (worker pools, simulators), and waiting for a
worker pool to be ready.

A `podfleet worker` is a parent with dramatiq children; started with
``start_new_session=True`` it leads its own process group, so one signal reaches all of it and
nothing outlives a stop.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable
from typing import Any


def kill_process_group(process: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """SIGKILL the group ``process`` leads, as a crash would, and reap its leader."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout)


def stop_process_groups(processes: Iterable[subprocess.Popen[Any]],
                        timeout: float = 15.0) -> None:
    """SIGTERM every group at once, give each ``timeout`` seconds to exit cleanly, then
    SIGKILL whatever is left of each group (a child may outlive its leader)."""
    processes = list(processes)
    for process in processes:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout)
        kill_process_group(process, timeout=5.0)


def wait_for_watcher(redis_url: str, redis_prefix: str, workers: subprocess.Popen[Any],
                     timeout: float, clusters: Iterable[str] = ("default",)) -> float:
    """Block until a watcher holds the lease of each of ``clusters``, i.e. the worker pool is
    up; returns the seconds waited. Before that no task can finish, so a latency measured
    earlier would measure the workers' start-up. Raises RuntimeError if the workers exit or
    the time runs out."""
    from podfleet.contracts.redis_keys import RedisKeys
    from podfleet.redis_client import connect

    client = connect(redis_url)  # a redis+sentinel:// URL too
    keys = RedisKeys(redis_prefix)
    leases = [keys.for_cluster(name).watcher_lease for name in clusters]
    began = time.monotonic()
    try:
        while client.exists(*leases) < len(leases):
            if workers.poll() is not None:
                raise RuntimeError(f"the workers exited with code {workers.returncode}")
            if time.monotonic() - began > timeout:
                raise RuntimeError(f"no watcher held the lease after {timeout:g}s")
            time.sleep(0.1)
    finally:
        client.close()
    return time.monotonic() - began
