"""incidents: contracts, incidents, field events, outages and cause segments, problem reports (issue #11)

The domain core of docs/process.md §3 (INC-1 … INC-10): clocks are computed from the events, never
stored, so nothing here holds a due time.

Revision ID: 0011
Revises: 0010
"""

from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('incident_contracts',
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('customer', sa.String(length=200), nullable=False),
    sa.Column('important_customer', sa.Boolean(), nullable=False),
    sa.Column('timezone', sa.String(length=100), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_incident_contracts'))
    )
    with op.batch_alter_table('incident_contracts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_contracts_customer'), ['customer'], unique=False)

    op.create_table('incidents',
    sa.Column('key', sa.String(length=24), nullable=False),
    sa.Column('contract_code', sa.String(length=64), nullable=False),
    sa.Column('customer', sa.String(length=200), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('caller_name', sa.String(length=200), nullable=False),
    sa.Column('caller_contact', sa.String(length=400), nullable=False),
    sa.Column('elements', sa.JSON(), nullable=False),
    sa.Column('reported', sa.Text(), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('initial_severity', sa.String(length=16), nullable=False),
    sa.Column('emergency', sa.Boolean(), nullable=False),
    sa.Column('affects_operation', sa.Boolean(), nullable=False),
    sa.Column('owner', sa.String(length=200), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('cause', sa.Text(), nullable=True),
    sa.Column('solution', sa.Text(), nullable=True),
    sa.Column('process', sa.Text(), nullable=True),
    sa.Column('summary', sa.Text(), nullable=True),
    sa.Column('closed_by', sa.String(length=200), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['contract_code'], ['incident_contracts.code'], name=op.f('fk_incidents_contract_code_incident_contracts')),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_incidents'))
    )
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incidents_contract_code'), ['contract_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_incidents_customer'), ['customer'], unique=False)
        batch_op.create_index(batch_op.f('ix_incidents_received_at'), ['received_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_incidents_state'), ['state'], unique=False)

    op.create_table('incident_events',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('incident_key', sa.String(length=24), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('by', sa.String(length=200), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['incident_key'], ['incidents.key'], name=op.f('fk_incident_events_incident_key_incidents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_events')),
    sa.UniqueConstraint('incident_key', 'seq', name=op.f('uq_incident_events_incident_key_seq'))
    )
    with op.batch_alter_table('incident_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_events_incident_key'), ['incident_key'], unique=False)

    op.create_table('incident_outages',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('incident_key', sa.String(length=24), nullable=False),
    sa.Column('element', sa.String(length=64), nullable=False),
    sa.Column('type', sa.String(length=24), nullable=False),
    sa.Column('start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('affected_units', sa.Integer(), nullable=False),
    sa.Column('units_in_service', sa.Integer(), nullable=False),
    sa.Column('our_work', sa.Boolean(), nullable=False),
    sa.Column('work_ref', sa.String(length=40), nullable=True),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['incident_key'], ['incidents.key'], name=op.f('fk_incident_outages_incident_key_incidents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_outages'))
    )
    with op.batch_alter_table('incident_outages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_outages_element'), ['element'], unique=False)
        batch_op.create_index(batch_op.f('ix_incident_outages_incident_key'), ['incident_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_incident_outages_start'), ['start'], unique=False)

    op.create_table('problem_reports',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('incident_key', sa.String(length=24), nullable=False),
    sa.Column('title', sa.String(length=400), nullable=False),
    sa.Column('office', sa.String(length=200), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('due', sa.Date(), nullable=False),
    sa.Column('opened_by', sa.String(length=200), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['incident_key'], ['incidents.key'], name=op.f('fk_problem_reports_incident_key_incidents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_problem_reports'))
    )
    with op.batch_alter_table('problem_reports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_problem_reports_due'), ['due'], unique=False)
        batch_op.create_index(batch_op.f('ix_problem_reports_incident_key'), ['incident_key'], unique=False)

    op.create_table('incident_outage_causes',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('outage_id', sa.String(length=36), nullable=False),
    sa.Column('cause', sa.String(length=16), nullable=False),
    sa.Column('start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('agreed_by_customer', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['outage_id'], ['incident_outages.id'], name=op.f('fk_incident_outage_causes_outage_id_incident_outages')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_outage_causes'))
    )
    with op.batch_alter_table('incident_outage_causes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_outage_causes_outage_id'), ['outage_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('incident_outage_causes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_outage_causes_outage_id'))

    op.drop_table('incident_outage_causes')
    with op.batch_alter_table('problem_reports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_problem_reports_incident_key'))
        batch_op.drop_index(batch_op.f('ix_problem_reports_due'))

    op.drop_table('problem_reports')
    with op.batch_alter_table('incident_outages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_outages_start'))
        batch_op.drop_index(batch_op.f('ix_incident_outages_incident_key'))
        batch_op.drop_index(batch_op.f('ix_incident_outages_element'))

    op.drop_table('incident_outages')
    with op.batch_alter_table('incident_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_events_incident_key'))

    op.drop_table('incident_events')
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incidents_state'))
        batch_op.drop_index(batch_op.f('ix_incidents_received_at'))
        batch_op.drop_index(batch_op.f('ix_incidents_customer'))
        batch_op.drop_index(batch_op.f('ix_incidents_contract_code'))

    op.drop_table('incidents')
    with op.batch_alter_table('incident_contracts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_contracts_customer'))

    op.drop_table('incident_contracts')
