"""The watcher as it runs in production: real ``podfleet worker`` processes, SIGKILL, takeover.

Two worker processes (one dramatiq process each) share a private Redis and the simulator; each
runs the watcher supervisor, so one of them watches. The test kills the watching process with
SIGKILL while pods are finishing, and checks that the other takes over within the lease time
and that every launch's outcome is in the stream exactly once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from watcher_support import (
    fast_simulator,
    new_key,
    options,
    per_launch,
    stream_events,
    task_pod,
    wait_for,
)

from podfleet.contracts.events import EventKind
from podfleet.contracts.redis_keys import RedisKeys
from podfleet.kube.client import KubeClient
from podfleet.local.fleet import LocalFleet
from podfleet.settings import Settings
from podfleet.simulator.cluster import fate
from podfleet.simulator.server import RunningSimulator
from podfleet.workers.watcher.actor import run_watcher, supervisor_interval
from podfleet.workers.watcher.lease import current_holder

LEASE_SECONDS = 2.0


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    simulator = fast_simulator(mode="process")
    yield simulator
    simulator.stop()


def fleet(sim: RunningSimulator, redis_url: str, prefix: str, tmp: Path) -> LocalFleet:
    """A local fleet on the simulator and Redis: two worker processes' settings (no DB)."""
    return LocalFleet(workdir=tmp, simulator=sim, redis_url=redis_url, migrate=False,
                      redis_prefix=prefix, signing_key="test-signing-key-0123456789", env={
                          "PODFLEET_WATCHER_LEASE_SECONDS": str(LEASE_SECONDS),
                          "PODFLEET_DELETE_POLICY": "never",
                      })


@pytest.fixture
def two_workers(sim: RunningSimulator, redis_url: str, keys: RedisKeys,
                tmp_path: Path) -> Iterator[LocalFleet]:
    """Two worker processes, each with a watcher supervisor, under ``keys``' prefix; at the
    end they are woken (a test may have stopped one) and closed."""
    local = fleet(sim, redis_url, keys.prefix, tmp_path).start()
    for _ in range(2):
        local.workers.start(1, 1)
    yield local
    for proc in local.workers.processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGCONT)
    local.close()


def test_takeover_after_sigkill_loses_and_repeats_nothing(
        two_workers: LocalFleet, keys: RedisKeys, client: redis.Redis,
        kube: KubeClient) -> None:
    stop_creating = threading.Event()
    try:
        # Given two worker processes, one of which holds the watcher lease
        first = wait_for(lambda: current_holder(client, keys), timeout=60, what="a watcher")
        # ... and pods finishing steadily while it watches
        launches: list[str] = []

        def create() -> None:
            while not stop_creating.is_set() and len(launches) < 60:
                pod = task_pod(new_key(), fate={fate.DURATION: "0.3"})
                kube.create_pod("default", pod)
                launches.append(pod["metadata"]["labels"]["podfleet.io/launch-id"])
                time.sleep(0.05)
        creator = threading.Thread(target=create)
        creator.start()
        wait_for(lambda: len(stream_events(client, keys)) >= 10, timeout=30,
                 what="events flowing")
        # When the watching process is SIGKILLed mid-stream
        pid = int(first.holder.split(":")[1])
        os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        # Then the other process takes the lease, with a larger token, within the lease time
        # (plus one supervisor interval)
        second = wait_for(lambda: (h := current_holder(client, keys)) and
                          h.token != first.token and h, timeout=30, what="a takeover")
        takeover = time.monotonic() - killed_at
        assert second.token > first.token
        assert takeover < LEASE_SECONDS + supervisor_interval(LEASE_SECONDS) + 2.0, takeover
        creator.join()
        # And every launch's outcome reaches the stream exactly once
        def all_done() -> bool:
            ended = {e.launch_id for e in stream_events(client, keys)
                     if e.kind is EventKind.REQUEUE or (e.state and e.state.is_terminal)}
            return set(launches) <= ended
        wait_for(all_done, timeout=60, what="every outcome")
        counts = per_launch(stream_events(client, keys))
        assert {n for n in counts.values()} == {1}, {k: n for k, n in counts.items() if n > 1}
        assert {launch for launch, state in counts if state == "success"} == set(launches)
        print(f"takeover after SIGKILL: {takeover:.2f}s (lease {LEASE_SECONDS}s)")
    finally:
        stop_creating.set()


@pytest.mark.slow
def test_a_paused_watcher_that_wakes_up_after_a_takeover_writes_nothing(
        two_workers: LocalFleet, keys: RedisKeys, client: redis.Redis,
        kube: KubeClient) -> None:
    launches: list[str] = []

    def create(n: int) -> None:
        for _ in range(n):
            pod = task_pod(new_key(), fate={fate.DURATION: "0.2"})
            kube.create_pod("default", pod)
            launches.append(pod["metadata"]["labels"]["podfleet.io/launch-id"])
    # Given a watcher that is frozen (SIGSTOP) past its lease while pods keep finishing
    first = wait_for(lambda: current_holder(client, keys), timeout=60, what="a watcher")
    pid = int(first.holder.split(":")[1])
    os.kill(pid, signal.SIGSTOP)
    create(10)
    wait_for(lambda: (h := current_holder(client, keys)) and h.token != first.token,
             timeout=30, what="a takeover")
    # When it wakes up, with whatever it had buffered, and more pods run
    os.kill(pid, signal.SIGCONT)
    create(10)

    # Then every outcome is in the stream exactly once: the old watcher wrote nothing
    def all_done() -> bool:
        ended = {e.launch_id for e in stream_events(client, keys)
                 if e.state and e.state.is_terminal}
        return set(launches) <= ended
    wait_for(all_done, timeout=60, what="every outcome")
    time.sleep(0.5)
    counts = per_launch(stream_events(client, keys))
    assert {n for n in counts.values()} == {1}, {k: n for k, n in counts.items() if n > 1}


def test_two_watchers_started_at_once_one_works(redis_url: str) -> None:
    # Given two watcher starts racing each other
    sim = fast_simulator()
    settings = Settings.from_env({"PODFLEET_REDIS_URL": redis_url,
                                  "PODFLEET_REDIS_PREFIX": f"t{uuid.uuid4().hex[:8]}",
                                  "PODFLEET_WATCHER_LEASE_SECONDS": "2"})
    kube = KubeClient(sim.api_client(), timeout_seconds=5)
    stop = threading.Event()
    barrier = threading.Barrier(2)
    results: list[bool] = []

    def start() -> None:
        barrier.wait()
        results.append(run_watcher(settings, stop, kube=kube, options=options()))
    threads = [threading.Thread(target=start) for _ in range(2)]
    try:
        for t in threads:
            t.start()
        # Then one returns at once, having found the lease taken, and the other watches
        wait_for(lambda: results == [False], timeout=10, what="the loser to return")
        assert threads[0].is_alive() or threads[1].is_alive()
    finally:
        stop.set()
        for t in threads:
            t.join(10)
        kube.close()
        sim.stop()
    assert sorted(results) == [False, True]


def test_watch_actor_never_times_out_or_retries() -> None:
    from podfleet.broker import WATCH_ACTOR_NAME, WATCH_QUEUE
    from podfleet.workers.boot import boot

    app = boot(Settings.from_env({}))
    try:
        declared = app.watch_actor
        assert declared is not None
        assert declared.actor_name == WATCH_ACTOR_NAME
        assert declared.queue_name == WATCH_QUEUE
        assert declared.options["max_retries"] == 0
        assert declared.options["time_limit"] == float("inf")
        assert declared.options["notify_shutdown"] is True
    finally:
        app.broker.close()
