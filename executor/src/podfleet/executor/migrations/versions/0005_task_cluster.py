"""task_instances.cluster: the cluster the try's current pod was placed in.

NULL for rows written before podfleet served several clusters, and for launches not placed
yet; a NULL row is read as the ``default`` cluster's.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("task_instances") as batch:
        batch.add_column(sa.Column("cluster", sa.String(63), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("task_instances") as batch:
        batch.drop_column("cluster")
