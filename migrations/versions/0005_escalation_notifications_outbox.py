"""escalation, notifications, outbox

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


# The ladder of DESIGN §6 (000 L908): level, measure, threshold (working days), mode, decided by the
# level above, province only, against a region. Level 1's threshold is "deadline within N".
RULES = [
    (1, "预警", 5, "scan", False, False, False),
    (2, "函告", 1, "proposed", False, False, False),
    (3, "通报", 10, "proposed", False, False, False),
    (4, "督办", 20, "proposed", False, False, False),
    (5, "挂牌督办", 40, "proposed", True, False, False),
    (6, "约谈", 60, "proposed", True, False, False),
    (7, "曝光", None, "manual", False, False, False),
    (8, "区域限批", None, "manual", False, True, True),
    (9, "调查问责", None, "manual", False, False, False),
]
rule_table = sa.table("escalation_rule", sa.column("level", sa.Integer), sa.column("name", sa.String),
                      sa.column("threshold_workdays", sa.Integer), sa.column("mode", sa.String),
                      sa.column("decided_above", sa.Boolean), sa.column("province_only", sa.Boolean),
                      sa.column("against_region", sa.Boolean))


def upgrade() -> None:
    op.create_table('escalation_rule',
    sa.Column('level', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('threshold_workdays', sa.Integer(), nullable=True),
    sa.Column('mode', sa.String(length=20), nullable=False),
    sa.Column('decided_above', sa.Boolean(), nullable=False),
    sa.Column('province_only', sa.Boolean(), nullable=False),
    sa.Column('against_region', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('level', name=op.f('pk_escalation_rule'))
    )
    op.create_table('outbox_mail',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.String(length=200), nullable=False),
    sa.Column('recipients', sa.JSON(), nullable=False),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('html', sa.Text(), nullable=False),
    sa.Column('attachments', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_mail')),
    sa.UniqueConstraint('message_id', name=op.f('uq_outbox_mail_message_id'))
    )
    with op.batch_alter_table('outbox_mail', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_mail_status_next', ['status', 'next_attempt_at'], unique=False)

    op.create_table('scan_run',
    sa.Column('scan_date', sa.Date(), nullable=False),
    sa.Column('runs', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('summary', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('scan_date', name=op.f('pk_scan_run'))
    )
    op.create_table('escalation_record',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=True),
    sa.Column('region_id', sa.Integer(), nullable=True),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('cycle_started_on', sa.Date(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('overdue_workdays', sa.Integer(), nullable=True),
    sa.Column('deciding_region_id', sa.Integer(), nullable=True),
    sa.Column('scan_date', sa.Date(), nullable=True),
    sa.Column('decided_on', sa.Date(), nullable=True),
    sa.Column('doc_no', sa.String(length=100), nullable=False),
    sa.Column('membership_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['deciding_region_id'], ['region.id'], name=op.f('fk_escalation_record_deciding_region_id_region')),
    sa.ForeignKeyConstraint(['membership_id'], ['membership.id'], name=op.f('fk_escalation_record_membership_id_membership')),
    sa.ForeignKeyConstraint(['region_id'], ['region.id'], name=op.f('fk_escalation_record_region_id_region')),
    sa.ForeignKeyConstraint(['task_id'], ['task.id'], name=op.f('fk_escalation_record_task_id_task'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_escalation_record')),
    sa.UniqueConstraint('task_id', 'cycle_started_on', 'level', name=op.f('uq_escalation_record_task_id_cycle_started_on_level'))
    )
    with op.batch_alter_table('escalation_record', schema=None) as batch_op:
        batch_op.create_index('ix_escalation_record_status_region', ['status', 'deciding_region_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_escalation_record_task_id'), ['task_id'], unique=False)

    op.create_table('notification',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=True),
    sa.Column('record_id', sa.Integer(), nullable=True),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('notified_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('read_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['record_id'], ['escalation_record.id'], name=op.f('fk_notification_record_id_escalation_record'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['task_id'], ['task.id'], name=op.f('fk_notification_task_id_task'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_notification_user_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification')),
    sa.UniqueConstraint('user_id', 'record_id', name=op.f('uq_notification_user_id_record_id'))
    )
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.create_index('ix_notification_pending', ['notified_at', 'user_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_notification_task_id'), ['task_id'], unique=False)
        batch_op.create_index('ix_notification_user_read', ['user_id', 'read_at'], unique=False)
    op.bulk_insert(rule_table, [dict(zip(("level", "name", "threshold_workdays", "mode", "decided_above",
                                          "province_only", "against_region"), rule)) for rule in RULES])


def downgrade() -> None:
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_index('ix_notification_user_read')
        batch_op.drop_index(batch_op.f('ix_notification_task_id'))
        batch_op.drop_index('ix_notification_pending')

    op.drop_table('notification')
    with op.batch_alter_table('escalation_record', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_escalation_record_task_id'))
        batch_op.drop_index('ix_escalation_record_status_region')

    op.drop_table('escalation_record')
    op.drop_table('scan_run')
    with op.batch_alter_table('outbox_mail', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_mail_status_next')

    op.drop_table('outbox_mail')
    op.drop_table('escalation_rule')
