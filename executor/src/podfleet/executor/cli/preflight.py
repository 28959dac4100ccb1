"""Checks every executor subcommand makes before it acts: a DB at the right revision, and
one way to report bad input."""

from __future__ import annotations

import sys

from podfleet.executor import migrate

EXIT_BAD_INPUT = 2


def fail(command: str, message: str) -> int:
    """Print ``message`` as the command's error and return the bad-input exit code."""
    print(f"podfleet {command}: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def schema_problem(database_url: str) -> str | None:
    """Why the DB at ``database_url`` cannot be used yet, or None when it is at head."""
    try:
        current = migrate.current_revision(database_url)
    except Exception as exc:  # any driver error: name it rather than print a traceback
        return f"cannot open the metadata DB {_safe(database_url)}: {exc}"
    if current is None:
        return (f"the metadata DB {_safe(database_url)} has no podfleet tables yet: run "
                "`podfleet db upgrade` first")
    if current != migrate.head_revision():
        return (f"the metadata DB is at revision {current}, this podfleet needs "
                f"{migrate.head_revision()}: run `podfleet db upgrade`")
    return None


def _safe(database_url: str) -> str:
    import sqlalchemy as sa

    return sa.make_url(database_url).render_as_string(hide_password=True)
