"""This executor's record in the ``executors`` table: registration, heartbeat and fencing.

The record is how executors find out about each other: a live one (fresh heartbeat) cannot be
started twice under the same id, and a dead one's tasks are adopted by another. An executor
whose record was adopted meanwhile is *fenced*: it must stop changing tasks, since its
adopter owns them now. Heartbeats are written and judged on the database's clock
(:mod:`podfleet.executor.db_clock`), never a host's, so a host whose clock is off neither
looks dead nor takes a live executor for dead.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from podfleet.executor.db import ExecutorRecord, ExecutorState
from podfleet.executor.db_clock import SkewWatch, db_now, read_db_now
from podfleet.executor.rows import rowcount
from podfleet.settings import Settings


class ExecutorFenced(RuntimeError):
    """Another executor adopted this one's tasks (its heartbeat had expired); it must stop."""


class ExecutorIdInUse(RuntimeError):
    """A live executor (fresh heartbeat, other process) already runs under this id; its
    message is one line: the id, who holds it and since when, and how to pick another."""


class Registration:
    """One executor's registration: writes its record, keeps its heartbeat, knows if fenced."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session],
                 clock: Callable[[], float],
                 observe_skew: Callable[[float], None] | None = None) -> None:
        self.settings = settings
        self.executor_id = settings.executor.executor_id
        self._sessions = sessions
        self._clock = clock
        self.registered = False
        self.fenced = False
        self.next_heartbeat = 0.0
        self._skew = SkewWatch(observe=observe_skew)

    def register(self) -> None:
        """Claim the record under this id (refused while another live process holds it)."""
        now = self._clock()
        hostname, pid = socket.gethostname(), os.getpid()
        with self._sessions.begin() as session:
            db_time = read_db_now(session)
            self._skew.compare(db_time)
            record = session.get(ExecutorRecord, self.executor_id, with_for_update=True)
            if record is None:
                session.add(ExecutorRecord(
                    id=self.executor_id, hostname=hostname, pid=pid, started_at=db_time,
                    heartbeat_at=db_time, state=ExecutorState.RUNNING, adopted_by=None))
            else:
                age = db_time - record.heartbeat_at
                alive = (record.state == ExecutorState.RUNNING
                         and age < self.settings.executor.heartbeat_timeout_seconds)
                if alive and (record.hostname, record.pid) != (hostname, pid):
                    started = time.strftime("%Y-%m-%d %H:%M:%S UTC",
                                            time.gmtime(record.started_at))
                    raise ExecutorIdInUse(
                        f"executor id {self.executor_id!r} is in use by pid {record.pid} on "
                        f"{record.hostname} since {started} (heartbeat {age:.0f}s ago); "
                        "set a different PODFLEET_EXECUTOR_ID, or stop that one first")
                record.hostname, record.pid = hostname, pid
                record.started_at = record.heartbeat_at = db_time
                record.state = ExecutorState.RUNNING
                record.adopted_by = None
        self.registered = True
        self.next_heartbeat = now + self.settings.executor.heartbeat_seconds

    def beat(self, now: float) -> None:
        """Refresh the heartbeat; fences (and raises) when the record was adopted meanwhile."""
        with self._sessions.begin() as session:
            updated = rowcount(session.execute(
                sa.update(ExecutorRecord)
                .where(ExecutorRecord.id == self.executor_id,
                       ExecutorRecord.state == ExecutorState.RUNNING)
                .values(heartbeat_at=db_now())))
        if not updated:
            self.fence()
        self.next_heartbeat = now + self.settings.executor.heartbeat_seconds

    def fence(self) -> None:
        """Another executor owns this one's tasks now: stop for good."""
        self.fenced = True
        self.check_not_fenced()

    def check_not_fenced(self) -> None:
        if self.fenced:
            raise ExecutorFenced(
                f"executor {self.executor_id} was adopted by another executor after its "
                "heartbeat expired; it must not change tasks any more (start a new one)")

    def stop(self) -> None:
        """Mark the record stopped (its unfinished tasks become adoptable), unless fenced."""
        if self.registered and not self.fenced:
            with self._sessions.begin() as session:
                session.execute(
                    sa.update(ExecutorRecord)
                    .where(ExecutorRecord.id == self.executor_id,
                           ExecutorRecord.state == ExecutorState.RUNNING)
                    .values(state=ExecutorState.STOPPED, heartbeat_at=db_now()))
        self.registered = False
