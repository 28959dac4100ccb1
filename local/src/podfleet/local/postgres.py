"""A fresh PostgreSQL database on someone's server, dropped afterwards.

Tests and benchmarks run against a real PostgreSQL, often the machine's shared one; each takes
a database of its own under a random name, so it never reads or writes anyone else's data.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlalchemy as sa


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server could not be reached, or refused to create the database."""


class ScratchDatabase:
    """Create a database named ``<prefix>_<random>`` through ``admin_url`` (any database on the
    server, with the right to create databases); :meth:`drop` ends its sessions and drops it."""

    def __init__(self, admin_url: str, prefix: str = "podfleet_scratch") -> None:
        self.admin_url = admin_url
        self.name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        self._admin: sa.Engine | None = None
        self.url = ""

    def create(self) -> ScratchDatabase:
        import sqlalchemy as sa

        admin = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{self.name}"'))
        except sa.exc.OperationalError as exc:
            admin.dispose()
            raise PostgresUnavailable(
                f"PostgreSQL not reachable at {admin.url!r}: {exc}") from exc
        self._admin = admin
        self.url = admin.url.set(database=self.name).render_as_string(hide_password=False)
        return self

    def drop(self) -> None:
        import sqlalchemy as sa

        if self._admin is None:
            return
        with self._admin.connect() as conn:
            conn.execute(sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": self.name})
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.name}"'))
        self._admin.dispose()
        self._admin = None

    def __enter__(self) -> ScratchDatabase:
        return self.create()

    def __exit__(self, *exc: object) -> None:
        self.drop()
