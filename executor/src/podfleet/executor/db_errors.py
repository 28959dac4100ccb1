"""Metadata DB failures said in one line: which DB (its URL, password hidden) and the cause.

A driver error is a page of SQL, parameters and a link; a read-only or full database is bad
input of the operator's, and deserves one line that names the DB and what is wrong with it.
"""

from __future__ import annotations

import sqlalchemy as sa

# Causes an operator can act on, recognised by SQLSTATE (PostgreSQL) or message (SQLite).
_READ_ONLY_STATES = {"25006"}  # read_only_sql_transaction
_FULL_STATES = {"53100", "53200"}  # disk_full, out_of_memory
_READ_ONLY_TEXT = ("readonly database", "read-only transaction", "read-only file system")
_FULL_TEXT = ("database or disk is full", "no space left on device")


def redacted_url(database_url: str | sa.URL) -> str:
    """The DB's URL with its password hidden."""
    return sa.make_url(database_url).render_as_string(hide_password=True)


def describe_db_error(exc: sa.exc.DBAPIError, database_url: str | sa.URL) -> str:
    """One line: ``the metadata DB <url> is read-only|full|failed: <driver's first line>``."""
    original = exc.orig
    state = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    first_line = (str(original) if original is not None else str(exc)).strip().splitlines()
    cause = first_line[0] if first_line else type(exc).__name__
    lowered = cause.lower()
    if state in _READ_ONLY_STATES or any(text in lowered for text in _READ_ONLY_TEXT):
        what = "is read-only, podfleet cannot write to it"
    elif state in _FULL_STATES or any(text in lowered for text in _FULL_TEXT):
        what = "is full, podfleet cannot write to it"
    else:
        what = "failed"
    return f"the metadata DB {redacted_url(database_url)} {what}: {cause}"
