"""signed audit chain: each record's Ed25519 signature, and published signed heads (issue #10)

Records written before this have no signature and stay as they are: verification reads them
as "unsigned, written before signing began on <date>" (the date the first key was made) and
refuses an unsigned record dated after it. `siteflow audit checkpoint`, run once after the
upgrade, signs the head of every existing chain, which vouches for its unsigned records.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("key_id", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("signature", sa.String(length=100), nullable=True))
    op.create_table(
        "audit_checkpoints",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("stream", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("signed_at", sa.String(length=40), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("signature", sa.String(length=100), nullable=False),
        sa.Column("published_by", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_checkpoints"),
    )
    op.create_index("ix_audit_checkpoints_stream", "audit_checkpoints", ["stream"])


def downgrade() -> None:
    op.drop_index("ix_audit_checkpoints_stream", table_name="audit_checkpoints")
    op.drop_table("audit_checkpoints")
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("signature")
        batch.drop_column("key_id")
