"""outage attribution disputes (INC-7) and the raiser's email of a problem report (issue #11)

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("incident_outages") as batch:
        batch.add_column(
            sa.Column("attribution", sa.String(length=16), nullable=False, server_default="recorded")
        )
        batch.add_column(sa.Column("disputed_by", sa.String(length=320), nullable=True))
        batch.add_column(sa.Column("disputed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("dispute_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("decided_by", sa.String(length=600), nullable=True))
        batch.add_column(sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("incident_outage_causes") as batch:
        batch.add_column(sa.Column("superseded", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("problem_reports") as batch:
        batch.add_column(sa.Column("opened_by_email", sa.String(length=320), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("problem_reports") as batch:
        batch.drop_column("opened_by_email")
    with op.batch_alter_table("incident_outage_causes") as batch:
        batch.drop_column("superseded")
    with op.batch_alter_table("incident_outages") as batch:
        for name in (
            "decided_at",
            "decided_by",
            "dispute_reason",
            "disputed_at",
            "disputed_by",
            "attribution",
        ):
            batch.drop_column(name)
