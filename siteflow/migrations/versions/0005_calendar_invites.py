"""calendar invites; outbox attachments

Revision ID: 0005
Revises: 0004
"""

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    
    op.create_table('calendar_invites',
    sa.Column('uid', sa.String(length=200), nullable=False),
    sa.Column('subject', sa.String(length=64), nullable=False),
    sa.Column('key', sa.String(length=96), nullable=False),
    sa.Column('summary', sa.String(length=300), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('location', sa.String(length=300), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('all_day', sa.Boolean(), nullable=False),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attendees', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('uid', name=op.f('pk_calendar_invites')),
    sa.UniqueConstraint('subject', 'key', name=op.f('uq_calendar_invites_subject_key'))
    )
    with op.batch_alter_table('calendar_invites', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_calendar_invites_subject'), ['subject'], unique=False)

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('document_id', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('calendar_ics', sa.Text(), nullable=True))

    


def downgrade() -> None:
    
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('calendar_ics')
        batch_op.drop_column('document_id')

    with op.batch_alter_table('calendar_invites', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_calendar_invites_subject'))

    op.drop_table('calendar_invites')
    
