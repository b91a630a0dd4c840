"""incidents.next_notice_at: when the keeper next needs to look at an incident (issue #11)

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("next_notice_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_incidents_next_notice_at", ["next_notice_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_index("ix_incidents_next_notice_at")
        batch_op.drop_column("next_notice_at")
