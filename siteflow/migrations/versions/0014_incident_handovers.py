"""incident handovers: INC-9 requests that only their receiver accepts (issue #11)

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "incident_handovers",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("incident_key", sa.String(length=24), nullable=False),
        sa.Column("from_name", sa.String(length=200), nullable=False),
        sa.Column("from_email", sa.String(length=320), nullable=False),
        sa.Column("to_name", sa.String(length=200), nullable=False),
        sa.Column("to_email", sa.String(length=320), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_key"], ["incidents.key"], name="fk_incident_handovers_incident_key_incidents"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_incident_handovers"),
    )
    op.create_index("ix_incident_handovers_incident_key", "incident_handovers", ["incident_key"])


def downgrade() -> None:
    op.drop_index("ix_incident_handovers_incident_key", table_name="incident_handovers")
    op.drop_table("incident_handovers")
