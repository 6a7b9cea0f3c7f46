"""spans of 序时进度 over time for past-date reports

A report as of a past date replayed every task's events (about ten each): a minute for a 市州 at 10⁶
tasks. ``task_period`` keeps, per task, the spans of days over which its bucket, 逾期 and 延期 held
(``tracker.periods``), so such a report is one aggregate over the spans containing the date. Spans are a
function of the task's events and milestones: triggers on ``event`` and ``milestone`` append the task to
``period_stale`` in the writer's transaction; reports replay stale tasks and the scheduler recomputes
them. Every task there is now is marked stale here (computing 10⁶ tasks' spans takes minutes, which a
migration should not): reports stay exact meanwhile, replaying what is not caught up yet. An index on
a task's events in replay order serves the spans, the replays and the ledger export.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

MARK = "INSERT INTO period_stale (task_id) VALUES ({row}.task_id)"
TRIGGERS = {
    "sqlite": [
        f"CREATE TRIGGER period_event_insert AFTER INSERT ON event WHEN NEW.task_id IS NOT NULL "
        f"BEGIN {MARK.format(row='NEW')}; END",
        f"CREATE TRIGGER period_milestone_insert AFTER INSERT ON milestone BEGIN {MARK.format(row='NEW')}; END",
        f"CREATE TRIGGER period_milestone_update AFTER UPDATE ON milestone "
        f"BEGIN {MARK.format(row='OLD')}; {MARK.format(row='NEW')}; END",
        f"CREATE TRIGGER period_milestone_delete AFTER DELETE ON milestone BEGIN {MARK.format(row='OLD')}; END",
    ],
    "postgresql": [
        f"CREATE FUNCTION period_stale_mark() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"IF TG_OP <> 'INSERT' THEN {MARK.format(row='OLD')}; END IF; "
        f"IF TG_OP <> 'DELETE' AND (TG_OP = 'INSERT' OR OLD.task_id IS DISTINCT FROM NEW.task_id) THEN "
        f"{MARK.format(row='NEW')}; END IF; RETURN NULL; END $$",
        "CREATE TRIGGER period_event_insert AFTER INSERT ON event FOR EACH ROW "
        "WHEN (NEW.task_id IS NOT NULL) EXECUTE FUNCTION period_stale_mark()",
        "CREATE TRIGGER period_milestone_change AFTER INSERT OR UPDATE OR DELETE ON milestone FOR EACH ROW "
        "EXECUTE FUNCTION period_stale_mark()",
    ],
}
DROP_TRIGGERS = {
    "sqlite": [f"DROP TRIGGER IF EXISTS period_{name}" for name in
               ("event_insert", "milestone_insert", "milestone_update", "milestone_delete")],
    "postgresql": ["DROP TRIGGER IF EXISTS period_event_insert ON event",
                   "DROP TRIGGER IF EXISTS period_milestone_change ON milestone",
                   "DROP FUNCTION IF EXISTS period_stale_mark()"],
}


def upgrade() -> None:
    op.create_table('period_stale',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_period_stale'))
    )
    with op.batch_alter_table('period_stale', schema=None) as batch_op:
        batch_op.create_index('ix_period_stale_task_id', ['task_id'], unique=False)

    op.create_table('task_period',
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=False),
    sa.Column('valid_to', sa.Date(), nullable=True),
    sa.Column('bucket', sa.String(length=20), nullable=False),
    sa.Column('overdue', sa.Boolean(), nullable=False),
    sa.Column('extended', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('task_id', 'valid_from', name=op.f('pk_task_period'))
    )
    for statement in TRIGGERS[op.get_bind().dialect.name]:
        op.execute(statement)
    op.execute("INSERT INTO period_stale (task_id) SELECT id FROM task ORDER BY id")
    # A task's events in replay order (spans, replays), and "any event after D" answered from the index
    # alone (the ledger export asks it of every task: 6 of its ~30 seconds for a 市州 at 10⁶ tasks).
    op.create_index("ix_event_task_effective", "event", ["task_id", "effective_on", "id"])


def downgrade() -> None:
    op.drop_index("ix_event_task_effective", table_name="event")
    for statement in DROP_TRIGGERS[op.get_bind().dialect.name]:
        op.execute(statement)
    op.drop_table('task_period')
    with op.batch_alter_table('period_stale', schema=None) as batch_op:
        batch_op.drop_index('ix_period_stale_task_id')

    op.drop_table('period_stale')
