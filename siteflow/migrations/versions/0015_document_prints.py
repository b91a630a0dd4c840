"""document prints: verification codes, scans of the signed paper, the typed body kept (issue #12)

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.add_column(sa.Column("body_json", sa.Text(), nullable=True))
    op.create_table(
        "document_codes",
        sa.Column("document_id", sa.String(length=36), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"], ["documents.id"], name="fk_document_codes_document_id_documents"
        ),
        sa.PrimaryKeyConstraint("document_id", name="pk_document_codes"),
        sa.UniqueConstraint("code", name="uq_document_codes_code"),
    )
    op.create_table(
        "document_scans",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("document_id", sa.String(length=36), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("media_type", sa.String(length=32), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("uploaded_by", sa.String(length=600), nullable=False),
        sa.Column("door", sa.String(length=16), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"], ["documents.id"], name="fk_document_scans_document_id_documents"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_document_scans"),
    )
    op.create_index("ix_document_scans_document_id", "document_scans", ["document_id"])


def downgrade() -> None:
    op.drop_index("ix_document_scans_document_id", table_name="document_scans")
    op.drop_table("document_scans")
    op.drop_table("document_codes")
    with op.batch_alter_table("documents") as batch:
        batch.drop_column("body_json")
