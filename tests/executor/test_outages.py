"""sync() through outages of the services around it: a Redis that dies between reading the
event stream and acknowledging it, and a Kubernetes API server that refuses connections.
sync() must not raise (a scheduler loop calls it), must log, and must catch up afterwards."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest
import redis
from executor_support import Clock, ExecutorFactory, event, key, publish, row_of

from podfleet.contracts.redis_keys import EVENTS_GROUP, RedisKeys
from podfleet.contracts.states import TaskState
from podfleet.executor import Executor, TaskSubmission
from podfleet.kube.client import KubeClient
from podfleet.local.ports import free_port
from podfleet.local.redis_server import RedisServer
from podfleet.settings import Settings
from podfleet.simulator.cluster.config import ClusterConfig
from podfleet.simulator.config import SimulatorConfig
from podfleet.simulator.server import RunningSimulator, start_simulator
from podfleet.simulator.tls import TlsConfig

CMD = ["true"]


def test_redis_dying_between_reading_and_acknowledging_is_survived_and_caught_up_aof(
        make_executor: ExecutorFactory, private_redis: RedisServer, database_url: str,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    # Given a task whose whole life is in the executor's stream (Redis keeps an AOF)
    executor = make_executor(redis_url=private_redis.url)
    executor.start()
    executor.submit(key("a"), CMD)
    row = row_of(database_url, key("a"))
    publish(private_redis.url, [event(row, TaskState.LAUNCHED), event(row, TaskState.RUNNING),
                                event(row, TaskState.SUCCESS)])
    # When Redis is SIGKILLed after the events were read and committed, before their ack
    acknowledge = executor._streams.acknowledge

    def die_first(entries: list[object]) -> None:
        private_redis.kill()
        acknowledge(entries)  # type: ignore[arg-type]

    monkeypatch.setattr(executor._streams, "acknowledge", die_first)
    with caplog.at_level(logging.WARNING, logger="podfleet"):
        executor.sync()  # must not raise
        executor.sync()  # ... nor while Redis stays down
    monkeypatch.setattr(executor._streams, "acknowledge", acknowledge)
    # Then it logged the outage, and the commit stands
    assert any("sync interrupted" in r.getMessage() or "cannot read" in r.getMessage()
               for r in caplog.records)
    assert row_of(database_url, key("a")).state == TaskState.SUCCESS.value
    # When Redis is back, from its AOF, with the entries still unacknowledged
    private_redis.start()
    reported = dict(executor.get_event_buffer())
    deadline = time.monotonic() + 30  # a sync may still meet Redis loading its AOF
    while not reported and time.monotonic() < deadline:
        executor.sync()
        reported.update(executor.get_event_buffer())
        time.sleep(0.1)
    # Then the replay changed nothing, the scheduler hears of the success once, and the
    # stream is drained
    assert reported == {key("a"): (TaskState.SUCCESS, None)}
    executor.sync()
    assert executor.get_event_buffer() == {}
    client = redis.Redis.from_url(private_redis.url)
    stream = RedisKeys().events(executor.executor_id)
    assert (client.xlen(stream), client.xpending(stream, EVENTS_GROUP)["pending"]) == (0, 0)
    client.close()


@pytest.fixture
def sim_config() -> SimulatorConfig:
    """A simulator that can be stopped and started again on the same port (plain HTTP, so no
    CA file dies with it)."""
    return SimulatorConfig(port=free_port(), tls=TlsConfig(enabled=False), token="outage",
                           cluster=ClusterConfig(nodes=1, schedule_delay_s=0.01,
                                                 container_start_delay_s=0.01))


@pytest.fixture
def own_sim(sim_config: SimulatorConfig) -> Iterator[list[RunningSimulator]]:
    running = [start_simulator(sim_config)]
    yield running
    for sim in running:
        sim.stop()


def test_an_api_server_refusing_connections_does_not_stop_sync_which_catches_up(
        own_sim: list[RunningSimulator], sim_config: SimulatorConfig,
        environment: dict[str, str], database_url: str, redis_url: str,
        caplog: pytest.LogCaptureFixture) -> None:
    # Given an executor whose API server is gone (connections refused), with a pending
    # timeout that makes its housekeeping ask the API about a launched task
    values = {**environment, "PODFLEET_NAMESPACE": "default", "PODFLEET_HEARTBEAT_SECONDS": "1",
              "PODFLEET_PENDING_TIMEOUT_SECONDS": "5"}
    clock = Clock()
    executor = Executor(Settings.from_env(values), kube=KubeClient(own_sim[0].api_client()),
                        clock=clock)
    try:
        executor.start()
        executor.submit_many([TaskSubmission(key(n), CMD) for n in ("a", "b")])
        a, b = row_of(database_url, key("a")), row_of(database_url, key("b"))
        publish(redis_url, [event(b, TaskState.LAUNCHED)])
        executor.sync()
        own_sim[0].stop()
        # When events arrive and time passes while the API is unreachable
        publish(redis_url, [event(a, TaskState.LAUNCHED), event(a, TaskState.RUNNING),
                            event(a, TaskState.SUCCESS)])
        clock.advance(10)
        with caplog.at_level(logging.WARNING, logger="podfleet"):
            executor.sync()  # must not raise
            executor.sync()
        # Then the events were applied all the same (they need Redis and the DB only), and
        # the outage was logged
        assert executor.get_event_buffer() == {key("a"): (TaskState.SUCCESS, None)}
        assert caplog.records, "the outage must be logged"
        assert row_of(database_url, key("b")).state == TaskState.LAUNCHED.value
        # When the API server is back: its pod never appeared, so the stuck-launched check
        # (which needs the API) now fails the task
        own_sim.append(start_simulator(sim_config))
        clock.advance(10)
        executor.sync()
        assert executor.get_event_buffer().get(key("b"), (None,))[0] is TaskState.FAILED
    finally:
        executor.terminate()



def test_could_not_enqueue_is_logged_once_per_outage_and_when_it_clears(
        make_executor: ExecutorFactory, private_redis: RedisServer, database_url: str,
        caplog: pytest.LogCaptureFixture) -> None:
    # Given an executor whose Redis refuses writes (full: maxmemory reached, noeviction)
    executor = make_executor(redis_url=private_redis.url)
    executor.start()
    admin = redis.Redis.from_url(private_redis.url)
    admin.config_set("maxmemory-policy", "noeviction")
    admin.config_set("maxmemory", 1)
    # When a task is submitted and the scheduler loop syncs again and again
    with caplog.at_level(logging.INFO, logger="podfleet"):
        executor.submit(key("a"), CMD)
        for _ in range(5):
            executor.sync()
        failing = [r for r in caplog.records if "could not enqueue" in r.getMessage()]
        # Then the failure was logged once, not at every sync, and the task waits to be sent
        assert len(failing) == 1, [r.getMessage() for r in failing]
        assert row_of(database_url, key("a")).enqueued_at is None
        # When Redis takes writes again
        admin.config_set("maxmemory", 0)
        executor.sync()
    # Then the task is sent and the log says the outage cleared
    assert row_of(database_url, key("a")).enqueued_at is not None
    assert any("enqueueing launches works again" in r.getMessage() for r in caplog.records)
    admin.close()
