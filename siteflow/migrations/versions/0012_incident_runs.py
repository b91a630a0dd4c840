"""incident runs and notices: an incident's flow run and people, warnings/breaches sent once (issue #11)

Revision ID: 0012
Revises: 0011
"""

from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('incident_runs',
    sa.Column('key', sa.String(length=24), nullable=False),
    sa.Column('flow_run_id', sa.String(length=36), nullable=True),
    sa.Column('owner_name', sa.String(length=200), nullable=False),
    sa.Column('owner_email', sa.String(length=320), nullable=False),
    sa.Column('caller_name', sa.String(length=200), nullable=False),
    sa.Column('caller_email', sa.String(length=320), nullable=False),
    sa.Column('severity_settled', sa.Boolean(), nullable=False),
    sa.Column('reassignments', sa.Integer(), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['key'], ['incidents.key'], name=op.f('fk_incident_runs_key_incidents')),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_incident_runs'))
    )
    with op.batch_alter_table('incident_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_runs_flow_run_id'), ['flow_run_id'], unique=False)

    op.create_table('incident_notices',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('incident_key', sa.String(length=24), nullable=False),
    sa.Column('notice_key', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recipients', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['incident_key'], ['incidents.key'], name=op.f('fk_incident_notices_incident_key_incidents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_notices')),
    sa.UniqueConstraint('incident_key', 'notice_key', name=op.f('uq_incident_notices_incident_key_notice_key'))
    )
    with op.batch_alter_table('incident_notices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_notices_incident_key'), ['incident_key'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('incident_notices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_notices_incident_key'))
    op.drop_table('incident_notices')
    with op.batch_alter_table('incident_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_runs_flow_run_id'))
    op.drop_table('incident_runs')
