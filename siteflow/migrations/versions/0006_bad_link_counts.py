"""bad approval-link tokens per address and minute, shared by every web process

Revision ID: 0006
Revises: 0005
"""

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('bad_link_counts',
    sa.Column('address', sa.String(length=64), nullable=False),
    sa.Column('minute', sa.Integer(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('address', 'minute', name=op.f('pk_bad_link_counts'))
    )
    with op.batch_alter_table('bad_link_counts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bad_link_counts_minute'), ['minute'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('bad_link_counts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bad_link_counts_minute'))

    op.drop_table('bad_link_counts')
