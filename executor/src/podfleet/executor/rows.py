"""Bulk reads and writes of ``task_instances`` rows.

The hot paths (``submit_many`` inserting thousands of tasks, ``sync`` applying thousands of
events) touch many rows per call, so they do it in a fixed, small number of statements: COPY
or one multi-row INSERT to submit, one SELECT and one guarded bulk UPDATE to apply a batch.
Kept apart from the executor so that the SQL of each dialect lives in one place.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from podfleet.contracts.keys import TaskKey
from podfleet.contracts.messages import new_launch_id
from podfleet.contracts.states import TaskState
from podfleet.executor.db import TASK_ROW_COLUMNS, TASK_ROW_MUTABLE, TaskInstance, TaskRow
from podfleet.executor.submission import DuplicateSubmission, InvalidSubmission, ValidTask
from podfleet.executor.transitions import LAUNCH_COLUMNS

TASKS = cast(sa.Table, TaskInstance.__table__)
IN_CHUNK = 1000  # ids per IN (...) clause


class LostRace(Exception):
    """A guarded UPDATE matched fewer rows than it was given: another writer changed some of
    them between the batch's SELECT and its UPDATE."""


@dataclass(frozen=True, slots=True)
class NewTaskRow:
    """The QUEUED row of a freshly submitted task try: what submit writes and sends.

    Its fields are exactly the columns submit sets, in COPY's column order; every other
    column of ``task_instances`` starts NULL (:data:`NULL_AT_SUBMIT`).
    """

    dag_id: str
    task_id: str
    run_id: str
    map_index: int
    try_number: int
    state: str
    queue: str | None
    priority: int
    command: list[str]
    executor_config: dict[str, Any]
    executor_id: str
    launch_id: str
    attempt: int
    deadline: float | None
    submitted_at: float
    queued_at: float
    updated_at: float
    disruptions: int = 0

    @classmethod
    def queued(cls, task: ValidTask, now: float, executor_id: str) -> NewTaskRow:
        """The row of ``task``, owned by ``executor_id``, queued at ``now``."""
        key = task.key
        return cls(key.dag_id, key.task_id, key.run_id, key.map_index, key.try_number,
                   TaskState.QUEUED.value, task.queue, task.priority, task.command,
                   task.executor_config, executor_id, task.launch_id or new_launch_id(), 1,
                   task.deadline, now, now, now)

    @property
    def key(self) -> TaskKey:
        return TaskKey(self.dag_id, self.task_id, self.run_id, self.map_index,
                       self.try_number)

    def columns(self) -> dict[str, Any]:
        """Every column of the row, the ones submit leaves NULL included (an INSERT's
        parameters, or what resets a finished try submitted again)."""
        values = {name: getattr(self, name) for name in NEW_ROW_COLUMNS}
        values.update(dict.fromkeys(NULL_AT_SUBMIT))
        return values


#: Columns of :class:`NewTaskRow`, in its field order (COPY writes these).
NEW_ROW_COLUMNS: tuple[str, ...] = tuple(NewTaskRow.__dataclass_fields__)
#: Columns a new row leaves NULL.
NULL_AT_SUBMIT: tuple[str, ...] = (*LAUNCH_COLUMNS, "pod_namespace", "finished_at", "reason")
_JSON_COLUMNS = frozenset({"command", "executor_config"})


def insert_rows(sessions: sessionmaker[Session], rows: list[NewTaskRow], *,
                copy_supported: bool) -> None:
    """Insert new rows in one transaction (COPY where the driver supports it)."""
    try:
        with sessions.begin() as session:
            if copy_supported:
                _copy_rows(session, rows)
            else:
                session.execute(sa.insert(TASKS), [row.columns() for row in rows])
    except IntegrityError:
        # Some try exists already (rare): sort out which, still in one transaction.
        _insert_over_existing(sessions, rows)


def _insert_over_existing(sessions: sessionmaker[Session],
                          rows: list[NewTaskRow]) -> None:
    """Insert ``rows``, resetting finished tries that are submitted again (Airflow reruns
    a try with the same number, e.g. a rescheduled sensor); refuse any still active."""
    by_key = {row.key: row for row in rows}
    with sessions.begin() as session:
        existing: list[TaskInstance] = []
        for chunk in chunks(list(by_key), 500):
            existing.extend(session.scalars(sa.select(TaskInstance).where(
                sa.tuple_(TaskInstance.dag_id, TaskInstance.task_id, TaskInstance.run_id,
                          TaskInstance.map_index, TaskInstance.try_number)
                .in_([(k.dag_id, k.task_id, k.run_id, k.map_index, k.try_number)
                      for k in chunk]))))
        active = [row for row in existing if not row.task_state.is_terminal]
        if active:
            raise DuplicateSubmission([
                f"{row.key} is already {row.state} (launch {row.launch_id})"
                for row in active])
        _refuse_used_launch_ids(session, rows)
        for row in existing:
            fresh = by_key.pop(row.key)
            for column, value in fresh.columns().items():
                setattr(row, column, value)
        if by_key:
            session.execute(sa.insert(TASKS), [row.columns() for row in by_key.values()])


def _refuse_used_launch_ids(session: Session, rows: list[NewTaskRow]) -> None:
    """A launch id another task try holds already is refused, rather than left to the
    unique constraint's raw error (a try submitted again may keep its own)."""
    wanted = {row.launch_id: row.key for row in rows}
    used: list[str] = []
    for chunk in chunks(list(wanted), 500):
        used.extend(
            f"launch_id {held.launch_id} is already used by {held.key}"
            for held in session.scalars(sa.select(TaskInstance).where(
                TaskInstance.launch_id.in_(chunk)))
            if held.key != wanted[held.launch_id])
    if used:
        raise InvalidSubmission(sorted(used))


def _copy_rows(session: Any, rows: list[NewTaskRow]) -> None:
    """Insert new rows with PostgreSQL's COPY, in the session's transaction.

    psycopg sends an executemany as one INSERT per row; COPY streams them and lets the server
    do far less work per row (submit_many is the hot path: ≥ 5,000 tasks/s is the target).
    Columns left out are NULL. A unique violation fails the whole COPY, like the INSERT would.
    """
    import psycopg

    connection = session.connection().connection.driver_connection
    names = ", ".join(NEW_ROW_COLUMNS)
    try:
        with connection.cursor() as cursor, cursor.copy(
                f"COPY task_instances ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([orjson.dumps(getattr(row, c)).decode() if c in _JSON_COLUMNS
                                else getattr(row, c) for c in NEW_ROW_COLUMNS])
    except psycopg.errors.UniqueViolation as exc:
        # Raised by the driver itself here: present it as SQLAlchemy would.
        raise IntegrityError(f"COPY task_instances ({names})", None, exc) from exc


def select_task_rows(connection: Connection, launch_ids: list[str]) -> dict[str, TaskRow]:
    """The rows whose current launch is one of ``launch_ids``, by launch id."""
    columns = [TASKS.c[name] for name in TASK_ROW_COLUMNS]
    rows: dict[str, TaskRow] = {}
    for chunk in chunks(launch_ids, IN_CHUNK):
        for values in connection.execute(sa.select(*columns).where(
                TASKS.c.launch_id.in_(chunk))):
            row = TaskRow(*values)
            rows[row.launch_id] = row
    return rows


# A row is written only if it still holds what its new values were computed from: the same
# launch, state and owner (every change the state machine or an adoption makes changes one).
_GUARD_COLUMNS = ("id", "launch_id", "state", "executor_id")


def write_task_rows(connection: Connection, changes: list[tuple[TaskRow, TaskRow]]) -> None:
    """Write each (as read, as changed) pair's new values, guarded by its old ones.

    PostgreSQL gets one ``UPDATE ... FROM unnest(<one array per column>)``: a single
    statement of fixed shape however many rows, planned once. SQLite (one writer at a time,
    in-process) gets an executemany. Raises :class:`LostRace` when some row no longer
    matched its guard.
    """
    if not changes:
        return
    params: dict[str, list[Any]] = {f"old_{c}": [getattr(read, c) for read, _ in changes]
                                    for c in _GUARD_COLUMNS}
    params.update({f"new_{c}": [getattr(new, c) for _, new in changes]
                   for c in TASK_ROW_MUTABLE})
    if connection.dialect.name == "postgresql":
        matched = rowcount(connection.execute(_BULK_UPDATE_POSTGRESQL, params))
    else:
        statement = sa.update(TASKS).where(
            *[TASKS.c[c] == sa.bindparam(f"old_{c}") for c in _GUARD_COLUMNS]).values(
            {c: sa.bindparam(f"new_{c}") for c in TASK_ROW_MUTABLE})
        names = list(params)
        matched = rowcount(connection.execute(statement, [
            dict(zip(names, values, strict=True))
            for values in zip(*params.values(), strict=True)]))
    if matched != len(changes):
        raise LostRace(f"{len(changes) - matched} of {len(changes)} row(s) changed by "
                       "another writer meanwhile")


def _bulk_update_postgresql() -> sa.Update:
    from sqlalchemy.dialects.postgresql import ARRAY

    columns = [(f"old_{c}", TASKS.c[c].type) for c in _GUARD_COLUMNS] + [
        (f"new_{c}", TASKS.c[c].type) for c in TASK_ROW_MUTABLE]
    changes = sa.func.unnest(*[sa.bindparam(name, type_=ARRAY(type_))
                               for name, type_ in columns]).table_valued(
        *[sa.column(name, type_) for name, type_ in columns], name="changes").render_derived()
    return sa.update(TASKS).where(
        *[TASKS.c[c] == changes.c[f"old_{c}"] for c in _GUARD_COLUMNS]).values(
        {c: changes.c[f"new_{c}"] for c in TASK_ROW_MUTABLE})


_BULK_UPDATE_POSTGRESQL = _bulk_update_postgresql()


def rowcount(result: Any) -> int:
    """Rows an UPDATE matched (``Session.execute`` is typed as returning a plain Result)."""
    return int(cast(sa.CursorResult[Any], result).rowcount)


def chunks(items: Sequence[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield list(items[start:start + size])
