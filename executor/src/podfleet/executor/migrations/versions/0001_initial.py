"""task_instances and executors.

Revision ID: 0001
Revises:
Create Date: 2025-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ACTIVE = sa.text("state IN ('queued', 'launched', 'running')")


def upgrade() -> None:
    op.create_table(
        "task_instances",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  primary_key=True, autoincrement=True),
        sa.Column("dag_id", sa.String(250), nullable=False),
        sa.Column("task_id", sa.String(250), nullable=False),
        sa.Column("run_id", sa.String(250), nullable=False),
        sa.Column("map_index", sa.Integer(), nullable=False),
        sa.Column("try_number", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("queue", sa.String(256), nullable=True),
        sa.Column("command", sa.JSON(), nullable=False),
        sa.Column("executor_config", sa.JSON(), nullable=False),
        sa.Column("executor_id", sa.String(63), nullable=False),
        sa.Column("launch_id", sa.String(32), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("deadline", sa.Double(), nullable=True),
        sa.Column("pod_name", sa.String(253), nullable=True),
        sa.Column("pod_namespace", sa.String(63), nullable=True),
        sa.Column("pod_uid", sa.String(64), nullable=True),
        sa.Column("submitted_at", sa.Double(), nullable=False),
        sa.Column("queued_at", sa.Double(), nullable=False),
        sa.Column("enqueued_at", sa.Double(), nullable=True),
        sa.Column("launched_at", sa.Double(), nullable=True),
        sa.Column("running_at", sa.Double(), nullable=True),
        sa.Column("finished_at", sa.Double(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.UniqueConstraint("dag_id", "task_id", "run_id", "map_index", "try_number",
                            name="uq_task_instances_key"),
        sa.UniqueConstraint("launch_id", name="uq_task_instances_launch_id"),
    )
    op.create_index("ix_task_instances_active", "task_instances",
                    ["executor_id", "state", "enqueued_at", "queued_at"],
                    postgresql_where=_ACTIVE, sqlite_where=_ACTIVE)
    op.create_index("ix_task_instances_state", "task_instances", ["state", "dag_id"])
    op.create_table(
        "executors",
        sa.Column("id", sa.String(63), primary_key=True),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.Double(), nullable=False),
        sa.Column("heartbeat_at", sa.Double(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("adopted_by", sa.String(63), nullable=True),
    )
    op.create_index("ix_executors_adopted_by", "executors", ["adopted_by"])


def downgrade() -> None:
    op.drop_index("ix_executors_adopted_by", table_name="executors")
    op.drop_table("executors")
    op.drop_index("ix_task_instances_state", table_name="task_instances")
    op.drop_index("ix_task_instances_active", table_name="task_instances")
    op.drop_table("task_instances")
