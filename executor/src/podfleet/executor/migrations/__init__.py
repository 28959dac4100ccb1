"""Alembic migrations of the metadata DB, shipped inside the package (see ``migrate.py``)."""
