"""task_instances.priority: Airflow's priority_weight, so short slots go to the highest first.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A server default, so rows written before this revision read as priority 0.
    with op.batch_alter_table("task_instances") as batch:
        batch.add_column(sa.Column("priority", sa.Integer(), nullable=False,
                                   server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("task_instances") as batch:
        batch.drop_column("priority")
