"""proven signatures: each signature's proof, paper records, personal API tokens (issue #9)

Earlier signatures keep the door and the identity they asserted; they get the proof
``unverified`` and are shown as "identity not verified".

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("gates") as batch:
        batch.add_column(sa.Column("accepts_paper", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("gate_decisions") as batch:
        batch.add_column(sa.Column("proof", sa.String(length=16), nullable=False, server_default="unverified"))
        batch.add_column(sa.Column("recorded_by", sa.String(length=600), nullable=True))
        batch.add_column(sa.Column("evidence_sha256", sa.String(length=64), nullable=True))
    with op.batch_alter_table("gate_attempts") as batch:
        batch.add_column(sa.Column("proof", sa.String(length=16), nullable=False, server_default="unverified"))
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("label", sa.String(length=120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["staff_users.id"], name="fk_api_tokens_user_id_staff_users"),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
        sa.UniqueConstraint("token_sha256", name="uq_api_tokens_token_sha256"),
    )
    op.create_index("ix_api_tokens_user_id", "api_tokens", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_api_tokens_user_id", table_name="api_tokens")
    op.drop_table("api_tokens")
    with op.batch_alter_table("gate_attempts") as batch:
        batch.drop_column("proof")
    with op.batch_alter_table("gate_decisions") as batch:
        batch.drop_column("evidence_sha256")
        batch.drop_column("recorded_by")
        batch.drop_column("proof")
    with op.batch_alter_table("gates") as batch:
        batch.drop_column("accepts_paper")
