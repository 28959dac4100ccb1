"""The metadata DB's clock and its one-line errors, on both databases podfleet supports."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from podfleet.executor.db import ExecutorRecord, ExecutorState, make_engine
from podfleet.executor.db_clock import db_now, read_db_now
from podfleet.executor.db_errors import describe_db_error
from podfleet.executor.migrate import upgrade

# A generous bound: the database runs on this machine, on its clock.
SAME_MACHINE_S = 5.0


@pytest.fixture(params=["sqlite", "postgresql"])
def any_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/podfleet.sqlite"
        upgrade(url)
        return url
    return str(request.getfixturevalue("database_url"))


def test_the_database_clock_is_epoch_seconds_utc(any_database_url: str) -> None:
    engine = make_engine(any_database_url)
    with Session(engine) as session:
        now = read_db_now(session)
    engine.dispose()
    assert abs(now - time.time()) < SAME_MACHINE_S


def test_a_heartbeat_written_with_db_now_compares_with_db_now(any_database_url: str) -> None:
    # Given a record whose heartbeat is written by the database, in one statement
    engine = make_engine(any_database_url)
    with engine.begin() as connection:
        connection.execute(sa.insert(ExecutorRecord).values(
            id="e1", hostname="h", pid=1, started_at=0.0, heartbeat_at=db_now(),
            state=ExecutorState.RUNNING, adopted_by=None))
    # Then it is fresh against the database's own clock, and stale 61 s later
    with engine.connect() as connection:
        fresh = connection.execute(sa.select(sa.func.count()).select_from(ExecutorRecord)
                                   .where(ExecutorRecord.heartbeat_at > db_now() - 60))
        assert fresh.scalar_one() == 1
        stale = connection.execute(sa.select(sa.func.count()).select_from(ExecutorRecord)
                                   .where(ExecutorRecord.heartbeat_at + 61 < db_now()))
        assert stale.scalar_one() == 0
    engine.dispose()


def test_a_read_only_sqlite_database_is_one_line_naming_it(tmp_path: Path) -> None:
    # Given a migrated SQLite DB opened read-only
    path = tmp_path / "podfleet.sqlite"
    upgrade(f"sqlite:///{path}")
    url = f"sqlite:///file:{path}?mode=ro&uri=true"
    engine = make_engine(url)
    # When something writes to it
    with pytest.raises(sa.exc.DBAPIError) as failure, engine.begin() as connection:
        connection.execute(sa.insert(ExecutorRecord).values(
            id="e1", hostname="h", pid=1, started_at=0.0, heartbeat_at=0.0,
            state=ExecutorState.RUNNING, adopted_by=None))
    engine.dispose()
    # Then the error is one line naming the DB and saying it is read-only
    message = describe_db_error(failure.value, url)
    assert message.startswith("the metadata DB sqlite:///file") and str(path) in message
    assert "is read-only" in message and "\n" not in message
