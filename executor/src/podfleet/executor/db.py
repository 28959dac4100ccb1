"""The metadata DB: task instances and executors, as typed SQLAlchemy 2 models.

The DB is podfleet's source of truth (Redis may be lost and rebuilt from it), so every row
records enough to relaunch or reconcile its task without Redis: the command, the executor
config, the current launch id (which names the pod) and the owning executor.

Timestamps are UTC epoch seconds in double-precision columns: the same numbers travel in
messages, events and metrics, compare with plain arithmetic on both PostgreSQL and SQLite, and
avoid the naive/aware datetime split between the two dialects.

The schema itself is created by the Alembic migrations in ``podfleet.executor.migrations``
(:func:`podfleet.executor.migrate.upgrade`); ``Base.metadata`` here must match them (a test
compares the two).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from podfleet.contracts.keys import TaskKey
from podfleet.contracts.states import TaskState
from podfleet.settings import SettingsError

# States that hold a slot or may still change; the partial index below covers exactly these.
ACTIVE_STATES: tuple[str, ...] = (
    TaskState.QUEUED.value, TaskState.LAUNCHED.value, TaskState.RUNNING.value)
_ACTIVE_SQL = "state IN ('queued', 'launched', 'running')"

# Alembic's bookkeeping table, named so that podfleet can share a database with Airflow
# (whose own migrations use ``alembic_version``).
VERSION_TABLE = "podfleet_alembic_version"


class ExecutorState:
    """Values of ``executors.state``."""

    RUNNING = "running"    # heartbeating (or dead if its heartbeat is too old)
    STOPPED = "stopped"    # ended or terminated; any active rows left are adoptable
    ADOPTED = "adopted"    # another executor took over its rows and its event stream


class Base(DeclarativeBase):
    type_annotation_map = {
        dict[str, Any]: sa.JSON(),
        list[str]: sa.JSON(),
        float: sa.Double(),
    }


class _TaskColumns(Protocol):
    dag_id: str
    task_id: str
    run_id: str
    map_index: int
    try_number: int
    state: str


class TaskIdentity:
    """What a task row (ORM or plain) says about its task beyond its columns."""

    __slots__ = ()

    @property
    def key(self: _TaskColumns) -> TaskKey:
        return TaskKey(self.dag_id, self.task_id, self.run_id, self.map_index,
                       self.try_number)

    @property
    def task_state(self: _TaskColumns) -> TaskState:
        return TaskState(self.state)


class TaskInstance(Base, TaskIdentity):
    """One try of one task instance, and its current launch."""

    __tablename__ = "task_instances"

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
        autoincrement=True)
    dag_id: Mapped[str] = mapped_column(sa.String(250))
    task_id: Mapped[str] = mapped_column(sa.String(250))
    run_id: Mapped[str] = mapped_column(sa.String(250))
    map_index: Mapped[int] = mapped_column(sa.Integer())
    try_number: Mapped[int] = mapped_column(sa.Integer())
    state: Mapped[str] = mapped_column(sa.String(16))
    queue: Mapped[str | None] = mapped_column(sa.String(256))
    # Airflow's priority_weight: when slots are short, higher is sent first.
    priority: Mapped[int] = mapped_column(sa.Integer(), default=0, server_default="0")
    command: Mapped[list[str]]
    executor_config: Mapped[dict[str, Any]]
    # The owning executor: its stream receives the task's events; adoption rewrites it.
    executor_id: Mapped[str] = mapped_column(sa.String(63))
    # Assigned each time the try is (re)queued; names the pod (contracts.naming.pod_name).
    launch_id: Mapped[str] = mapped_column(sa.String(32))
    # Launches of this try so far: 1, then +1 per requeue or relaunch.
    attempt: Mapped[int] = mapped_column(sa.Integer(), default=1)
    deadline: Mapped[float | None]
    pod_name: Mapped[str | None] = mapped_column(sa.String(253))
    pod_namespace: Mapped[str | None] = mapped_column(sa.String(63))
    pod_uid: Mapped[str | None] = mapped_column(sa.String(64))
    submitted_at: Mapped[float]  # first submit of this try (end-to-end latency starts here)
    queued_at: Mapped[float]  # when the current launch was queued
    enqueued_at: Mapped[float | None]  # sent to the broker; NULL = waiting for a slot/resend
    launched_at: Mapped[float | None]
    running_at: Mapped[float | None]
    finished_at: Mapped[float | None]
    reason: Mapped[str | None] = mapped_column(sa.Text())
    updated_at: Mapped[float]
    # This try's pods disrupted so far (preempted, evicted, drained, …): each relaunched the
    # try without spending a retry, up to PODFLEET_DISRUPTION_RETRIES.
    disruptions: Mapped[int] = mapped_column(sa.Integer(), default=0, server_default="0")
    # While QUEUED: what its launch waits on (``waiting on quota in ns X: …``), from the
    # launcher's WAITING event; cleared when the task moves on. The queued timeout fails the
    # task with it instead of relaunching into the same wait.
    waiting_reason: Mapped[str | None] = mapped_column(sa.Text())
    # The cluster the current launch's pod was placed in (from the launcher's and the
    # watcher's events); NULL until placed, and for rows older than multi-cluster podfleet,
    # which are the ``default`` cluster's. Revoke, logs, resync and adoption go there.
    cluster: Mapped[str | None] = mapped_column(sa.String(63))

    __table_args__ = (
        sa.UniqueConstraint("dag_id", "task_id", "run_id", "map_index", "try_number",
                            name="uq_task_instances_key"),
        sa.UniqueConstraint("launch_id", name="uq_task_instances_launch_id"),
        # Slot counts, the waiting list, the stuck-queued scan and adoption all filter
        # (executor_id, active state): this partial index keeps them proportional to the
        # active tasks, however long the finished history grows.
        sa.Index("ix_task_instances_active", "executor_id", "state", "enqueued_at", "queued_at",
                 postgresql_where=sa.text(_ACTIVE_SQL), sqlite_where=sa.text(_ACTIVE_SQL)),
        sa.Index("ix_task_instances_state", "state", "dag_id"),
    )


@dataclass(slots=True)
class TaskRow(TaskIdentity):
    """A task row as plain data: what sync's hot path reads with one Core SELECT per batch.

    Loading ORM objects costs far more per row than applying an event does; this carries the
    columns the state machine (:mod:`podfleet.executor.transitions`) and the event buffer
    need, and none of the large JSON ones (``command``, ``executor_config``).
    """

    id: int
    dag_id: str
    task_id: str
    run_id: str
    map_index: int
    try_number: int
    executor_id: str
    submitted_at: float
    state: str
    launch_id: str
    attempt: int
    pod_name: str | None
    pod_namespace: str | None
    pod_uid: str | None
    queued_at: float
    enqueued_at: float | None
    launched_at: float | None
    running_at: float | None
    finished_at: float | None
    reason: str | None
    updated_at: float
    disruptions: int
    waiting_reason: str | None
    cluster: str | None = None


#: Columns of :class:`TaskRow`, in its field order.
TASK_ROW_COLUMNS: tuple[str, ...] = tuple(TaskRow.__dataclass_fields__)
#: Of those, the ones the state machine may change (a bulk UPDATE writes exactly these).
TASK_ROW_MUTABLE: tuple[str, ...] = TASK_ROW_COLUMNS[TASK_ROW_COLUMNS.index("state"):]


class ExecutorRecord(Base):
    """One executor process: its heartbeat decides whether its tasks may be adopted."""

    __tablename__ = "executors"

    id: Mapped[str] = mapped_column(sa.String(63), primary_key=True)
    hostname: Mapped[str] = mapped_column(sa.String(255))
    pid: Mapped[int] = mapped_column(sa.Integer())
    started_at: Mapped[float]
    heartbeat_at: Mapped[float]
    state: Mapped[str] = mapped_column(sa.String(16))
    # Set when adopted: the adopter also drains this executor's event stream.
    adopted_by: Mapped[str | None] = mapped_column(sa.String(63), index=True)


def make_engine(database_url: str, **kwargs: Any) -> Engine:
    """An engine for ``database_url`` set up for podfleet's access pattern.

    SQLite (the embedded default) gets its directory created, WAL journaling (readers do not
    block the writer) and a busy timeout (concurrent writers wait instead of failing).
    """
    url = sa.make_url(database_url)
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_on_connect)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    if url.get_backend_name() == "postgresql" and url.get_driver_name() == "psycopg":
        _require_psycopg()
        # psycopg prepares a statement after 5 runs and PostgreSQL may then keep a generic
        # plan made while the table was small: a sequential scan that gets slower with every
        # row (measured: submit_many fell from 7,000 to 300 tasks/s over 30,000 rows).
        # Planning each statement with its parameters keeps index scans.
        kwargs.setdefault("connect_args", {}).setdefault("prepare_threshold", None)
    return sa.create_engine(url, **kwargs)


def _require_psycopg() -> None:
    """psycopg is the ``postgres`` extra: say so rather than fail with an ImportError."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise SettingsError(
            "PODFLEET_DATABASE_URL is a PostgreSQL URL but its driver psycopg is not installed: "
            "pip install 'podfleet[postgres]'") from None


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
