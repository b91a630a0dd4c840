"""single sign-on: the provider identity linked to a staff account (issue #9)

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("staff_users") as batch:
        batch.add_column(sa.Column("sso_subject", sa.String(length=700), nullable=True))
        batch.create_unique_constraint("uq_staff_users_sso_subject", ["sso_subject"])


def downgrade() -> None:
    with op.batch_alter_table("staff_users") as batch:
        batch.drop_constraint("uq_staff_users_sso_subject", type_="unique")
        batch.drop_column("sso_subject")
