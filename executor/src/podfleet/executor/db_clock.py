"""The metadata DB's clock, in epoch seconds: the one clock executors' heartbeats are judged on.

Executors on different hosts compare each other's heartbeats; on their own clocks, one 120 s
ahead would take a live executor for dead and fence it. :func:`db_now` is a SQL expression for
the database server's current time (PostgreSQL: ``clock_timestamp()``; SQLite:
``julianday('now')``, which is UTC), so a heartbeat is written and judged in the same
statement on the same clock, whatever the hosts' clocks say.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import FunctionElement

log = logging.getLogger("podfleet.clock")

# Beyond this a host's clock is called skewed (as for Redis' clock, podfleet.redis_client.clock).
WARN_SECONDS = 30.0


class db_now(FunctionElement[float]):
    """The database server's time now, in epoch seconds (a float)."""

    type = sa.Float()
    inherit_cache = True


@compiles(db_now, "postgresql")
def _db_now_postgresql(element: db_now, compiler: Any, **kw: Any) -> str:
    # clock_timestamp(), not now(): now() is the transaction's start, and a long
    # transaction would write an old heartbeat.
    return "CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)"


@compiles(db_now)
def _db_now_sqlite(element: db_now, compiler: Any, **kw: Any) -> str:
    # julianday('now') is UTC with millisecond precision; 2440587.5 is the epoch's day.
    return "((julianday('now') - 2440587.5) * 86400.0)"


def read_db_now(session: Session) -> float:
    """The database server's time now, in epoch seconds."""
    value = session.scalar(sa.select(db_now()))
    return float(value) if value is not None else time.time()


class SkewWatch:
    """Says, once, when this host's clock is off from the database's by over WARN_SECONDS."""

    def __init__(self, local: Callable[[], float] = time.time,
                 observe: Callable[[float], None] | None = None) -> None:
        self._local = local
        self._observe = observe
        self._warned = False

    def compare(self, database_now: float) -> float:
        """Record how far this host is ahead of ``database_now``; returns that skew."""
        skew = self._local() - database_now
        if self._observe is not None:
            self._observe(skew)
        if abs(skew) > WARN_SECONDS and not self._warned:
            self._warned = True
            direction = "ahead of" if skew > 0 else "behind"
            log.warning("clock skew: this host's clock is %.0f s %s the metadata database's; "
                        "heartbeats are judged on the database's clock", abs(skew), direction)
        return skew
