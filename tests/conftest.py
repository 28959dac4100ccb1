"""Fixtures shared by every test: a private Redis, a fresh PostgreSQL database, the simulator.

Integration tests talk to real services over real connections. Redis is always a private
``redis-server`` on a free port (tests kill and restart their own); PostgreSQL is a fresh
database created for the session on the server named by ``TEST_POSTGRES_URL``
(default: the machine's, 127.0.0.1:5432), dropped at the end. A missing service skips the
tests that need it locally and fails them in CI (``CI=true``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from service_checks import missing_service

from podfleet.executor.migrate import upgrade
from podfleet.local.postgres import PostgresUnavailable, ScratchDatabase
from podfleet.local.redis_sentinel import SentinelGroup
from podfleet.local.redis_server import RedisServer, RedisServerError

POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _started_redis(*, appendonly: bool = False) -> RedisServer:
    try:
        return RedisServer(appendonly=appendonly).start()
    except RedisServerError as exc:
        missing_service(str(exc))
        raise


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A private redis-server for the whole session (do not kill it: use ``private_redis``)."""
    server = _started_redis()
    yield server
    server.close()


@pytest.fixture
def private_redis(request: pytest.FixtureRequest) -> Iterator[RedisServer]:
    """A redis-server of this test's own, to kill and restart at will; a test whose name
    says ``aof`` gets one that keeps an append-only file (restarts keep the data)."""
    server = _started_redis(appendonly="aof" in request.node.name)
    yield server
    server.close()


@pytest.fixture(scope="module")
def sentinels() -> Iterator[SentinelGroup]:
    """A Redis primary, its replica and three sentinels, for one test module (a test that
    kills the primary is alone in its module); skipped where they cannot start."""
    try:
        group = SentinelGroup(sentinels=3).start()
    except RedisServerError as exc:
        pytest.skip(str(exc))
    yield group
    group.close()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """The session Redis, flushed before each test so tests do not see each other's keys."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    yield redis_server.url


@pytest.fixture(scope="session")
def postgres_database_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this session, dropped afterwards."""
    try:
        scratch = ScratchDatabase(POSTGRES_ADMIN_URL, prefix="podfleet_test").create()
    except PostgresUnavailable as exc:
        missing_service(str(exc))
        raise
    yield scratch.url
    scratch.drop()


@pytest.fixture(scope="session")
def migrated_postgres_url(postgres_database_url: str) -> str:
    """The session's PostgreSQL database with podfleet's tables (migrated once)."""
    upgrade(postgres_database_url)
    return postgres_database_url


@pytest.fixture
def database_url(migrated_postgres_url: str) -> Iterator[str]:
    """The session's PostgreSQL database, with podfleet's tables emptied for this test."""
    engine = sa.create_engine(migrated_postgres_url)
    with engine.begin() as connection:
        connection.execute(sa.text("TRUNCATE task_instances, executors RESTART IDENTITY"))
    engine.dispose()
    yield migrated_postgres_url
