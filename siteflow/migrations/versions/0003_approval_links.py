"""approval links for email answers; outbox secret erased after sending

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "approval_links",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("gate_id", sa.String(length=36), nullable=False),
        sa.Column("recipient_name", sa.String(length=200), nullable=False),
        sa.Column("recipient_email", sa.String(length=320), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["gate_id"], ["gates.id"], name="fk_approval_links_gate_id_gates"),
        sa.PrimaryKeyConstraint("id", name="pk_approval_links"),
        sa.UniqueConstraint("token_sha256", name="uq_approval_links_token_sha256"),
    )
    op.create_index("ix_approval_links_gate_id", "approval_links", ["gate_id"])
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("secret", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("secret")
    op.drop_index("ix_approval_links_gate_id", table_name="approval_links")
    op.drop_table("approval_links")
