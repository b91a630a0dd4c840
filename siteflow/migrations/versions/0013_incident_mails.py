"""incident mails: every mail to the support address, kept with its outcome (issue #11)

Revision ID: 0013
Revises: 0012
"""

from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('incident_mails',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('mail_key', sa.String(length=64), nullable=False),
    sa.Column('arrived_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('envelope_from', sa.String(length=320), nullable=False),
    sa.Column('raw', sa.LargeBinary(), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('sender', sa.String(length=320), nullable=True),
    sa.Column('subject', sa.String(length=400), nullable=True),
    sa.Column('incident_key', sa.String(length=24), nullable=True),
    sa.Column('contract_code', sa.String(length=64), nullable=True),
    sa.Column('routed_to', sa.String(length=400), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_mails')),
    sa.UniqueConstraint('mail_key', name=op.f('uq_incident_mails_mail_key'))
    )
    with op.batch_alter_table('incident_mails', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_mails_arrived_at'), ['arrived_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_incident_mails_outcome'), ['outcome'], unique=False)
        batch_op.create_index(batch_op.f('ix_incident_mails_incident_key'), ['incident_key'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('incident_mails', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_mails_incident_key'))
        batch_op.drop_index(batch_op.f('ix_incident_mails_outcome'))
        batch_op.drop_index(batch_op.f('ix_incident_mails_arrived_at'))
    op.drop_table('incident_mails')
