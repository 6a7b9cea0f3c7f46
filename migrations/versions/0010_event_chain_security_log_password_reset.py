"""tamper-evident event chain, security log, forced password change

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-22
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import sqlalchemy as sa
from alembic import context, op


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('security_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('username', sa.String(length=80), nullable=False),
    sa.Column('membership_id', sa.Integer(), nullable=True),
    sa.Column('remote_addr', sa.String(length=64), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['membership_id'], ['membership.id'], name=op.f('fk_security_log_membership_id_membership'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_security_log_user_id_user_account'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_security_log'))
    )
    with op.batch_alter_table('security_log', schema=None) as batch_op:
        batch_op.create_index('ix_security_log_at', ['at'], unique=False)
        batch_op.create_index('ix_security_log_kind_at', ['kind', 'at'], unique=False)
        batch_op.create_index('ix_security_log_user_id_at', ['user_id', 'at'], unique=False)

    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('prev_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('hash', sa.String(length=64), nullable=True))
        batch_op.drop_index('ix_event_entity')
    _chain_existing_events()
    # with the id, the index gives a chain without a task its newest event and verify's walk its order
    # (made after the back-fill, so its UPDATE does not maintain it)
    op.create_index('ix_event_entity', 'event', ['entity', 'entity_id', 'id'], unique=False)
    if op.get_context().dialect.name == 'postgresql':
        op.execute(APPEND_ONLY_FUNCTION)
        op.execute(APPEND_ONLY_TRIGGER)
        op.execute('ALTER TABLE event ENABLE ALWAYS TRIGGER event_append_only')

    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('must_change_password', sa.Boolean(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('password_changed_at', sa.DateTime(timezone=True), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_column('password_changed_at')
        batch_op.drop_column('must_change_password')

    if op.get_context().dialect.name == 'postgresql':
        op.execute('DROP TRIGGER IF EXISTS event_append_only ON event')
        op.execute('DROP FUNCTION IF EXISTS event_append_only()')
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.drop_index('ix_event_entity')
        batch_op.create_index('ix_event_entity', ['entity', 'entity_id'], unique=False)
        batch_op.drop_column('hash')
        batch_op.drop_column('prev_hash')

    with op.batch_alter_table('security_log', schema=None) as batch_op:
        batch_op.drop_index('ix_security_log_user_id_at')
        batch_op.drop_index('ix_security_log_kind_at')
        batch_op.drop_index('ix_security_log_at')

    op.drop_table('security_log')


# --- the event chain ---------------------------------------------------------------------------------
# Events are append-only on PostgreSQL: a row trigger refuses UPDATE and DELETE (ENABLE ALWAYS: also
# under session_replication_role = replica). TRUNCATE fires no row trigger, so ``tracker restore
# --force`` and the tests' reset still empty the table.

APPEND_ONLY_FUNCTION = """
CREATE FUNCTION event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '履责留痕只能追加，不能修改或删除（% event %）', TG_OP, OLD.id
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""
APPEND_ONLY_TRIGGER = """
CREATE TRIGGER event_append_only BEFORE UPDATE OR DELETE ON event
FOR EACH ROW EXECUTE FUNCTION event_append_only()
"""
BACKFILL_BATCH = 10000

# The hash as tracker.chain computes it at 0010, kept here so the migration stays what it was.
_event = sa.table(
    'event', sa.column('id', sa.Integer), sa.column('task_id', sa.Integer), sa.column('entity', sa.String),
    sa.column('entity_id', sa.Integer), sa.column('action', sa.String), sa.column('membership_id', sa.Integer),
    sa.column('user_id', sa.Integer), sa.column('from_state', sa.String), sa.column('to_state', sa.String),
    sa.column('data', sa.JSON), sa.column('recorded_at', sa.DateTime(timezone=True)),
    sa.column('effective_on', sa.Date), sa.column('prev_hash', sa.String), sa.column('hash', sa.String))
_links = sa.table('event_chain_backfill', sa.column('id', sa.Integer), sa.column('prev_hash', sa.String),
                  sa.column('hash', sa.String))


def _hash(prev_hash, row) -> str:
    recorded_at = row.recorded_at
    recorded_at = (recorded_at.replace(tzinfo=dt.UTC) if recorded_at.tzinfo is None
                   else recorded_at.astimezone(dt.UTC))
    body = json.dumps({
        'task_id': row.task_id, 'entity': row.entity, 'entity_id': row.entity_id, 'action': row.action,
        'membership_id': row.membership_id, 'user_id': row.user_id, 'from_state': row.from_state,
        'to_state': row.to_state, 'data': row.data, 'recorded_at': recorded_at.isoformat(timespec='microseconds'),
        'effective_on': row.effective_on.isoformat(),
    }, sort_keys=True, ensure_ascii=False, separators=(',', ':'))
    return hashlib.sha256(f"{prev_hash or ''}\n{body}".encode()).hexdigest()


def _chain_existing_events() -> None:
    """Link the events written before this revision into their chains (per task in id order, per
    (entity, entity_id) for those without one): one streamed read in chain order, the links written in
    batches to a temporary table, then one ``UPDATE … FROM`` — no per-row round trip, constant memory."""
    if context.is_offline_mode():
        return  # no rows to read when only SQL is printed; `tracker audit verify` would name them unlinked
    conn = op.get_bind()
    postgres = conn.dialect.name == 'postgresql'
    conn.execute(sa.text('CREATE TEMPORARY TABLE event_chain_backfill '
                         '(id INTEGER PRIMARY KEY, prev_hash VARCHAR(64), hash VARCHAR(64))'))
    columns = [c for c in _event.c if c.name not in ('prev_hash', 'hash')]
    by_task = sa.select(*columns).where(_event.c.task_id.is_not(None)).order_by(_event.c.task_id, _event.c.id)
    by_entity = (sa.select(*columns).where(_event.c.task_id.is_(None))
                 .order_by(_event.c.entity, _event.c.entity_id, _event.c.id))
    for stmt in (by_task, by_entity):
        _link(conn, stmt)
    if postgres:
        conn.execute(sa.text('ANALYZE event_chain_backfill'))
    conn.execute(sa.text('UPDATE event SET prev_hash = b.prev_hash, hash = b.hash '
                         'FROM event_chain_backfill AS b WHERE event.id = b.id'))
    conn.execute(sa.text('DROP TABLE event_chain_backfill'))


def _link(conn, stmt) -> None:
    key, previous, batch = None, None, []
    for row in conn.execute(stmt, execution_options={'stream_results': True, 'yield_per': BACKFILL_BATCH}):
        row_key = (row.task_id,) if row.task_id is not None else (None, row.entity, row.entity_id)
        if row_key != key:
            key, previous = row_key, None
        digest = _hash(previous, row)
        batch.append((row.id, previous, digest))
        previous = digest
        if len(batch) >= BACKFILL_BATCH:
            _write_links(conn, batch)
            batch = []
    if batch:
        _write_links(conn, batch)


def _write_links(conn, batch) -> None:
    if conn.dialect.name != 'postgresql':
        conn.execute(_links.insert(), [{'id': i, 'prev_hash': p, 'hash': h} for i, p, h in batch])
        return
    cursor = conn.connection.driver_connection.cursor()  # COPY: far faster than batched INSERTs
    with cursor.copy('COPY event_chain_backfill (id, prev_hash, hash) FROM STDIN') as copy:
        for row in batch:
            copy.write_row(row)
