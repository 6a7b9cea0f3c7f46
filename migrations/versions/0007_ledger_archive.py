"""ledger archive

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ledger_archive',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('region_id', sa.Integer(), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('stored_name', sa.String(length=200), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.Column('figures', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['region_id'], ['region.id'], name=op.f('fk_ledger_archive_region_id_region')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_archive')),
    sa.UniqueConstraint('region_id', 'month', name=op.f('uq_ledger_archive_region_id_month')),
    sa.UniqueConstraint('stored_name', name=op.f('uq_ledger_archive_stored_name'))
    )
    with op.batch_alter_table('ledger_archive', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_archive_region_id'), ['region_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('ledger_archive', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_archive_region_id'))

    op.drop_table('ledger_archive')
