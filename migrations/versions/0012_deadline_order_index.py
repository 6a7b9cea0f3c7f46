"""the task list's order by deadline, indexed

The list sorts by 整改时限 with tasks that have none last, ``coalesce(deadline, '9999-12-31'), id``
(``tracker.queries.DEADLINE_ORDER``). For a county PostgreSQL reads the region's tasks and sorts a few
thousand; for the whole province it sorted all 10⁶ tasks for every page (about 2 s). With this index the
first page and every keyset page walk it (well under a millisecond). ``IF NOT EXISTS``: the benchmark
ledger of docs/PERFORMANCE.md was given the index by hand before this revision was applied to it.
SQLite cannot reflect an index on an expression, so autogenerate (and its check) skip it there.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_task_deadline_order', 'task', [sa.literal_column("coalesce(deadline, '9999-12-31')"), 'id'],
                    unique=False, if_not_exists=True)


def downgrade() -> None:
    op.drop_index('ix_task_deadline_order', table_name='task')
