"""Alembic environment: runs on the connection ``podfleet.executor.migrate`` hands over.

``migrate.py`` opens the connection itself (with podfleet's SQLite pragmas) and passes it in
``config.attributes["connection"]``, so no URL ever goes through alembic's ini interpolation.
"""

from __future__ import annotations

from alembic import context

from podfleet.executor.db import VERSION_TABLE, Base, make_engine


def run_migrations() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is None:  # the alembic command line, with sqlalchemy.url set
        engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
        with engine.connect() as own_connection:
            _run(own_connection)
        engine.dispose()
    else:
        _run(connection)


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        # SQLite cannot ALTER most things; batch mode recreates tables when a migration must.
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
