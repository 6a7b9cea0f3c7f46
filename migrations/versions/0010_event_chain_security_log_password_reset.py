"""tamper-evident event chain, security log, forced password change

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


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

    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('must_change_password', sa.Boolean(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('password_changed_at', sa.DateTime(timezone=True), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_column('password_changed_at')
        batch_op.drop_column('must_change_password')

    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.drop_column('hash')
        batch_op.drop_column('prev_hash')

    with op.batch_alter_table('security_log', schema=None) as batch_op:
        batch_op.drop_index('ix_security_log_user_id_at')
        batch_op.drop_index('ix_security_log_kind_at')
        batch_op.drop_index('ix_security_log_at')

    op.drop_table('security_log')
