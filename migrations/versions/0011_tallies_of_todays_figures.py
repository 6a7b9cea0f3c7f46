"""tallies of today's figures kept by triggers

The dashboard and today's report count the values kept on each task. At 10⁶ tasks one GROUP BY over
them takes about half a second even from a covering index, and a page needs several; so the counts are
kept: triggers on ``task`` and ``task_unit`` append a −1 row for a task's old values and a +1 row for its
new ones whenever a counted column changes (in the writer's own transaction, whatever wrote it: an
operation, the daily refresh's set-based UPDATE, an import, COPY). Σn per key is the live count;
``tracker.tally`` reads the sums and now and then folds the rows of each key into one.

A table rebuilt on SQLite by a later ``batch_alter_table`` loses its triggers: tests/test_tally.py
checks they exist at head.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

# A task is counted once under its own region and once under every region above it (``scope_id``), so
# any region's figures are the rows of one scope, a few thousand at most, whatever the ledger's size.
TASK_KEYS = "channel_id, round_id, state, schedule, overdue, not_reported, escalation_level"
LEAD_KEYS = "state, schedule, overdue, not_reported"
MONTH = {"postgresql": "CAST(date_trunc('month', {row}.closed_on) AS date)",
         "sqlite": "date({row}.closed_on, 'start of month')"}
# The region of task ``row`` and every region above it, as ``scope.id``.
SCOPES = "region own JOIN region scope ON own.path LIKE scope.path || '%'"
# The same, joined to the tasks ``t`` (recounting what is there).
T_SCOPES = "JOIN region own ON own.id = t.region_id JOIN region scope ON own.path LIKE scope.path || '%'"


def _of(row: str, keys: str) -> str:
    return ", ".join(f"{row}.{key.strip()}" for key in keys.split(","))


def _task_rows(dialect: str, row: str, sign: int) -> list[str]:
    """The statements counting task ``row`` (NEW or OLD) with ``sign`` in the three tallies."""
    month = MONTH[dialect].format(row=row)
    return [
        f"INSERT INTO task_tally (scope_id, {TASK_KEYS}, extended, n) "
        f"SELECT scope.id, {_of(row, TASK_KEYS)}, {row}.extension_count > 0, {sign} "
        f"FROM {SCOPES} WHERE own.id = {row}.region_id",
        f"INSERT INTO closure_tally (scope_id, month, n) SELECT scope.id, {month}, {sign} "
        f"FROM {SCOPES} WHERE own.id = {row}.region_id "
        f"AND {row}.schedule = 'completed' AND {row}.closed_on IS NOT NULL",
        f"INSERT INTO lead_tally (unit_id, scope_id, {LEAD_KEYS}, extended, n) "
        f"SELECT tu.unit_id, scope.id, {_of(row, LEAD_KEYS)}, {row}.extension_count > 0, {sign} "
        f"FROM task_unit tu, {SCOPES} WHERE own.id = {row}.region_id AND tu.task_id = {row}.id AND tu.role = 'lead'",
    ]


def _lead_rows(row: str, sign: int) -> list[str]:
    """The statement counting task_unit ``row`` (a lead unit's part) with ``sign`` in lead_tally."""
    return [f"INSERT INTO lead_tally (unit_id, scope_id, {LEAD_KEYS}, extended, n) "
            f"SELECT {row}.unit_id, scope.id, {_of('t', LEAD_KEYS)}, t.extension_count > 0, {sign} "
            f"FROM task t, {SCOPES} WHERE own.id = t.region_id AND t.id = {row}.task_id AND {row}.role = 'lead'"]


TASK_CHANGED = ["region_id", *TASK_KEYS.split(", "), "closed_on"]
UNIT_CHANGED = ["task_id", "unit_id", "role"]


def _changed(columns: list[str], distinct: str, extra: str = "") -> str:
    return " OR ".join([f"OLD.{c} {distinct} NEW.{c}" for c in columns] + ([extra] if extra else []))


def _sqlite() -> list[str]:
    def trigger(name: str, event: str, table: str, body: list[str], when: str = "") -> str:
        condition = f" WHEN {when}" if when else ""
        return f"CREATE TRIGGER {name} AFTER {event} ON {table}{condition} BEGIN {'; '.join(body)}; END"

    extended = "(OLD.extension_count > 0) IS NOT (NEW.extension_count > 0)"
    return [
        trigger("tally_task_insert", "INSERT", "task", _task_rows("sqlite", "NEW", 1)),
        trigger("tally_task_update", "UPDATE", "task",
                _task_rows("sqlite", "OLD", -1) + _task_rows("sqlite", "NEW", 1),
                _changed(TASK_CHANGED, "IS NOT", extended)),
        trigger("tally_task_delete", "DELETE", "task", _task_rows("sqlite", "OLD", -1)),
        trigger("tally_task_unit_insert", "INSERT", "task_unit", _lead_rows("NEW", 1)),
        trigger("tally_task_unit_update", "UPDATE", "task_unit", _lead_rows("OLD", -1) + _lead_rows("NEW", 1),
                _changed(UNIT_CHANGED, "IS NOT")),
        trigger("tally_task_unit_delete", "DELETE", "task_unit", _lead_rows("OLD", -1)),
    ]


def _postgresql() -> list[str]:
    def function(name: str, old: list[str], new: list[str]) -> str:
        return (f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"IF TG_OP <> 'INSERT' THEN {'; '.join(old)}; END IF; "
                f"IF TG_OP <> 'DELETE' THEN {'; '.join(new)}; END IF; "
                "RETURN NULL; END $$")

    extended = "(OLD.extension_count > 0) IS DISTINCT FROM (NEW.extension_count > 0)"
    return [
        function("tally_task", _task_rows("postgresql", "OLD", -1), _task_rows("postgresql", "NEW", 1)),
        "CREATE TRIGGER tally_task_insert_delete AFTER INSERT OR DELETE ON task "
        "FOR EACH ROW EXECUTE FUNCTION tally_task()",
        f"CREATE TRIGGER tally_task_update AFTER UPDATE ON task FOR EACH ROW "
        f"WHEN ({_changed(TASK_CHANGED, 'IS DISTINCT FROM', extended)}) EXECUTE FUNCTION tally_task()",
        function("tally_task_unit", _lead_rows("OLD", -1), _lead_rows("NEW", 1)),
        "CREATE TRIGGER tally_task_unit_insert_delete AFTER INSERT OR DELETE ON task_unit "
        "FOR EACH ROW EXECUTE FUNCTION tally_task_unit()",
        f"CREATE TRIGGER tally_task_unit_update AFTER UPDATE ON task_unit FOR EACH ROW "
        f"WHEN ({_changed(UNIT_CHANGED, 'IS DISTINCT FROM')}) EXECUTE FUNCTION tally_task_unit()",
    ]


TRIGGERS = {"sqlite": _sqlite(), "postgresql": _postgresql()}
DROP_TRIGGERS = {
    "sqlite": [f"DROP TRIGGER IF EXISTS tally_{name}" for name in
               ("task_insert", "task_update", "task_delete", "task_unit_insert", "task_unit_update",
                "task_unit_delete")],
    "postgresql": ["DROP TRIGGER IF EXISTS tally_task_insert_delete ON task",
                   "DROP TRIGGER IF EXISTS tally_task_update ON task",
                   "DROP TRIGGER IF EXISTS tally_task_unit_insert_delete ON task_unit",
                   "DROP TRIGGER IF EXISTS tally_task_unit_update ON task_unit",
                   "DROP FUNCTION IF EXISTS tally_task()", "DROP FUNCTION IF EXISTS tally_task_unit()"],
}
# The counts of the tasks already there.
REBUILD = [
    f"INSERT INTO task_tally (scope_id, {TASK_KEYS}, extended, n) "
    f"SELECT scope.id, {_of('t', TASK_KEYS)}, t.extension_count > 0, count(*) FROM task t {T_SCOPES} "
    f"GROUP BY scope.id, {_of('t', TASK_KEYS)}, t.extension_count > 0",
    f"INSERT INTO lead_tally (unit_id, scope_id, {LEAD_KEYS}, extended, n) "
    f"SELECT tu.unit_id, scope.id, {_of('t', LEAD_KEYS)}, t.extension_count > 0, count(*) "
    f"FROM task t JOIN task_unit tu ON tu.task_id = t.id AND tu.role = 'lead' {T_SCOPES} "
    f"GROUP BY tu.unit_id, scope.id, {_of('t', LEAD_KEYS)}, t.extension_count > 0",
]


def upgrade() -> None:
    op.create_table('closure_tally',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('scope_id', sa.Integer(), nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_closure_tally'))
    )
    with op.batch_alter_table('closure_tally', schema=None) as batch_op:
        batch_op.create_index('ix_closure_tally_scope_id_month', ['scope_id', 'month'], unique=False)

    op.create_table('lead_tally',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('scope_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('schedule', sa.String(length=20), nullable=True),
    sa.Column('overdue', sa.Boolean(), nullable=True),
    sa.Column('not_reported', sa.Boolean(), nullable=True),
    sa.Column('extended', sa.Boolean(), nullable=True),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lead_tally'))
    )
    with op.batch_alter_table('lead_tally', schema=None) as batch_op:
        batch_op.create_index('ix_lead_tally_scope_id', ['scope_id'], unique=False)

    op.create_table('task_tally',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('scope_id', sa.Integer(), nullable=False),
    sa.Column('channel_id', sa.Integer(), nullable=False),
    sa.Column('round_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('schedule', sa.String(length=20), nullable=True),
    sa.Column('overdue', sa.Boolean(), nullable=True),
    sa.Column('not_reported', sa.Boolean(), nullable=True),
    sa.Column('escalation_level', sa.Integer(), nullable=True),
    sa.Column('extended', sa.Boolean(), nullable=True),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_task_tally'))
    )
    with op.batch_alter_table('task_tally', schema=None) as batch_op:
        batch_op.create_index('ix_task_tally_scope_id', ['scope_id'], unique=False)



    dialect = op.get_bind().dialect.name
    overdue = sa.text("overdue IS true")
    op.create_index("ix_task_overdue_deadline", "task", ["deadline", "id"], postgresql_where=overdue,
                    sqlite_where=overdue)
    for statement in TRIGGERS[dialect]:
        op.execute(statement)
    for statement in REBUILD:
        op.execute(statement)
    month = MONTH[dialect].format(row="t")
    op.execute(f"INSERT INTO closure_tally (scope_id, month, n) SELECT scope.id, {month}, count(*) FROM task t "
               f"{T_SCOPES} WHERE t.schedule = 'completed' AND t.closed_on IS NOT NULL "
               f"GROUP BY scope.id, {month}")


def downgrade() -> None:
    op.drop_index("ix_task_overdue_deadline", table_name="task")
    for statement in DROP_TRIGGERS[op.get_bind().dialect.name]:
        op.execute(statement)
    with op.batch_alter_table('task_tally', schema=None) as batch_op:
        batch_op.drop_index('ix_task_tally_scope_id')

    op.drop_table('task_tally')
    with op.batch_alter_table('lead_tally', schema=None) as batch_op:
        batch_op.drop_index('ix_lead_tally_scope_id')

    op.drop_table('lead_tally')
    with op.batch_alter_table('closure_tally', schema=None) as batch_op:
        batch_op.drop_index('ix_closure_tally_scope_id_month')

    op.drop_table('closure_tally')
