"""This executor's record in the ``executors`` table: registration, heartbeat and fencing.

The record is how executors find out about each other: a live one (fresh heartbeat) cannot be
started twice under the same id, and a dead one's tasks are adopted by another. An executor
whose record was adopted meanwhile is *fenced*: it must stop changing tasks, since its
adopter owns them now.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from podfleet.executor.db import ExecutorRecord, ExecutorState
from podfleet.executor.rows import rowcount
from podfleet.settings import Settings


class ExecutorFenced(RuntimeError):
    """Another executor adopted this one's tasks (its heartbeat had expired); it must stop."""


class ExecutorIdInUse(RuntimeError):
    """A live executor (fresh heartbeat, other process) already runs under this id."""


class Registration:
    """One executor's registration: writes its record, keeps its heartbeat, knows if fenced."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session],
                 clock: Callable[[], float]) -> None:
        self.settings = settings
        self.executor_id = settings.executor.executor_id
        self._sessions = sessions
        self._clock = clock
        self.registered = False
        self.fenced = False
        self.next_heartbeat = 0.0

    def register(self) -> None:
        """Claim the record under this id (refused while another live process holds it)."""
        now = self._clock()
        hostname, pid = socket.gethostname(), os.getpid()
        with self._sessions.begin() as session:
            record = session.get(ExecutorRecord, self.executor_id, with_for_update=True)
            if record is None:
                session.add(ExecutorRecord(
                    id=self.executor_id, hostname=hostname, pid=pid, started_at=now,
                    heartbeat_at=now, state=ExecutorState.RUNNING, adopted_by=None))
            else:
                alive = (record.state == ExecutorState.RUNNING and record.heartbeat_at
                         > now - self.settings.executor.heartbeat_timeout_seconds)
                if alive and (record.hostname, record.pid) != (hostname, pid):
                    raise ExecutorIdInUse(
                        f"executor id {self.executor_id!r} is in use by pid {record.pid} on "
                        f"{record.hostname} (heartbeat {now - record.heartbeat_at:.0f}s ago); "
                        "set a different PODFLEET_EXECUTOR_ID")
                record.hostname, record.pid = hostname, pid
                record.started_at = record.heartbeat_at = now
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
                .values(heartbeat_at=now)))
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
                    .values(state=ExecutorState.STOPPED, heartbeat_at=self._clock()))
        self.registered = False
