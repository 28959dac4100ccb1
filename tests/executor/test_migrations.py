"""The migrations create, upgrade and drop the schema on PostgreSQL and SQLite alike."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from podfleet.executor.db import VERSION_TABLE, Base, make_engine
from podfleet.executor.migrate import current_revision, downgrade, head_revision, upgrade

POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@pytest.fixture
def empty_postgres_url() -> Iterator[str]:
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"podfleet_mig_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    yield admin.url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/nested/podfleet.sqlite"


@pytest.fixture(params=["postgresql", "sqlite"])
def empty_url(request: pytest.FixtureRequest) -> str:
    fixture = "empty_postgres_url" if request.param == "postgresql" else "sqlite_url"
    return str(request.getfixturevalue(fixture))


def schema_differences(url: str) -> list[object]:
    engine = make_engine(url)
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"version_table": VERSION_TABLE, "compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    return list(diff)


def table_names(url: str) -> set[str]:
    engine = make_engine(url)
    names = set(sa.inspect(engine).get_table_names())
    engine.dispose()
    return names


def test_upgrade_from_empty_creates_the_models_schema(empty_url: str) -> None:
    # Given an empty database; When it is upgraded to head
    upgrade(empty_url)
    # Then it is at head and matches the ORM models exactly
    assert current_revision(empty_url) == head_revision()
    assert schema_differences(empty_url) == []


def test_downgrade_then_upgrade_round_trips(empty_url: str) -> None:
    # Given a database at head
    upgrade(empty_url)
    # When it is taken down to base
    downgrade(empty_url, "base")
    # Then podfleet's tables are gone
    assert current_revision(empty_url) is None
    assert not {"task_instances", "executors"} & table_names(empty_url)
    # And upgrading again restores the same schema
    upgrade(empty_url)
    assert schema_differences(empty_url) == []


def test_sqlite_runs_in_wal_mode(sqlite_url: str) -> None:
    # Given the default embedded DB; When podfleet opens it
    upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    with engine.connect() as connection:
        mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
        busy = connection.exec_driver_sql("PRAGMA busy_timeout").scalar()
    engine.dispose()
    # Then readers do not block the writer, and writers wait for each other
    assert (mode, busy) == ("wal", 30000)
