"""Redis' clock as the one clock of deadlines, against a real private redis-server that the
tests stop and start: an offset once measured outlives an outage, and a strict clock with no
offset yet refuses to guess (a host 700 s ahead guessing zero fails every launch as
"expired")."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from podfleet.local.redis_server import RedisServer
from podfleet.redis_client.clock import RedisClock


@pytest.fixture
def server() -> Iterator[RedisServer]:
    started = RedisServer().start()
    yield started
    started.close()


def _client(server: RedisServer) -> redis.Redis:
    # No retries of its own: each call is one try, as the clock's callers see it.
    return redis.Redis(host=server.host, port=server.port, socket_timeout=2,
                       socket_connect_timeout=2, retry=Retry(NoBackoff(), 0))


def test_a_strict_clock_with_no_offset_yet_raises_while_redis_is_gone(
        server: RedisServer) -> None:
    clock = RedisClock(_client(server), strict=True)
    # Given a Redis that is down before the clock ever read it
    server.kill()
    # Then asking the time is Redis' error, not a guess
    with pytest.raises(redis.ConnectionError):
        clock.now()


def test_a_strict_clock_reads_redis_at_its_next_call_once_redis_is_back(
        server: RedisServer) -> None:
    clock = RedisClock(_client(server), strict=True)
    server.kill()
    with pytest.raises(redis.ConnectionError):
        clock.now()
    # When Redis is back, the very next call measures (no refresh interval to wait out)
    server.start()
    answer = clock.now()
    # Then it answers Redis' time (this host's, here: the two share a clock)
    assert abs(answer - time.time()) < 1.0
    assert abs(clock.skew_seconds) < 1.0


def test_a_measured_offset_outlives_an_outage(server: RedisServer) -> None:
    clock = RedisClock(_client(server), strict=True, refresh_seconds=0.0)
    clock.now()
    # Given a clock that measured its offset, and a Redis that then went away
    clock.skew_seconds = 123.0  # as a host that far ahead would have measured
    server.kill()
    # Then it keeps that offset rather than failing its callers
    assert abs(clock.now() - (time.time() - 123.0)) < 1.0


def test_a_lenient_clock_answers_this_hosts_time_while_it_cannot_measure(
        server: RedisServer) -> None:
    clock = RedisClock(_client(server))
    server.kill()
    assert abs(clock.now() - time.time()) < 1.0
