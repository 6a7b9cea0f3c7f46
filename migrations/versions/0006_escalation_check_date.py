"""escalation check date

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('task', schema=None) as batch_op:
        batch_op.add_column(sa.Column('escalation_check_on', sa.Date(), nullable=True))
        batch_op.create_index(batch_op.f('ix_task_escalation_check_on'), ['escalation_check_on'], unique=False)
    # Open tasks are looked at by the next scan.
    op.execute("UPDATE task SET escalation_check_on = next_check_on WHERE next_check_on IS NOT NULL")



def downgrade() -> None:
    with op.batch_alter_table('task', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_task_escalation_check_on'))
        batch_op.drop_column('escalation_check_on')

