"""A scratch PostgreSQL database: a fresh one for a test session or a benchmark, dropped after."""

from __future__ import annotations

import contextlib

import pytest
import sqlalchemy as sa

from podfleet.local.postgres import PostgresUnavailable, ScratchDatabase


def _databases(admin_url: str) -> set[str]:
    engine = sa.create_engine(admin_url)
    try:
        with engine.connect() as conn:
            return set(conn.execute(sa.text("SELECT datname FROM pg_database")).scalars())
    finally:
        engine.dispose()


def test_a_scratch_database_is_there_while_in_use_and_gone_after(
        postgres_database_url: str) -> None:
    # Given a scratch database made through any database on the server
    with ScratchDatabase(postgres_database_url, prefix="podfleet_scratch_test") as scratch:
        # Then it exists, under its own name, and holds what is written to it
        assert scratch.name in _databases(postgres_database_url)
        engine = sa.create_engine(scratch.url)
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t (n int)"))
        # (a session still open when it is dropped is ended, not waited for)
        held = engine.connect()
        held.execute(sa.text("SELECT 1"))

    # And after, it is gone
    assert scratch.name not in _databases(postgres_database_url)
    with contextlib.suppress(sa.exc.DBAPIError):  # its server side was ended
        held.close()
    engine.dispose()


def test_an_unreachable_server_is_named() -> None:
    scratch = ScratchDatabase("postgresql+psycopg://nobody@127.0.0.1:1/postgres")
    with pytest.raises(PostgresUnavailable, match="PostgreSQL not reachable"):
        scratch.create()
