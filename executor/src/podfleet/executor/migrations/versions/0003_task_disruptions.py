"""task_instances.disruptions: how often this try's pods were disrupted (and relaunched).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-09
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A server default, so rows written before this revision read as never disrupted.
    with op.batch_alter_table("task_instances") as batch:
        batch.add_column(sa.Column("disruptions", sa.Integer(), nullable=False,
                                   server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("task_instances") as batch:
        batch.drop_column("disruptions")
