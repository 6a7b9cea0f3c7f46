"""indexes for the list sorts and today's figures

The task list's 最近更新 and 问题编号 sorts walk an index instead of sorting the ledger, and today's
figures (总览, today's 序时进度 report) count the values kept on each task from one covering index
(index-only scans on PostgreSQL). See docs/PERFORMANCE.md.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('task', schema=None) as batch_op:
        batch_op.create_index('ix_task_code_id', ['code', 'id'], unique=False)
        batch_op.create_index('ix_task_kept_values', ['region_id', 'schedule', 'overdue', 'not_reported', 'state', 'escalation_level', 'channel_id', 'round_id', 'extension_count', 'closed_on', 'next_check_on', 'id'], unique=False)
        batch_op.create_index('ix_task_updated_at_id', ['updated_at', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('task', schema=None) as batch_op:
        batch_op.drop_index('ix_task_updated_at_id')
        batch_op.drop_index('ix_task_kept_values')
        batch_op.drop_index('ix_task_code_id')
