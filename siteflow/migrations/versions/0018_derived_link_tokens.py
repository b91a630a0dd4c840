"""derived link tokens: the outbox names a link instead of holding its token (issue #10 item 3)

A mail waiting in the outbox at the upgrade keeps its link: its row is pointed at the link whose
hash its token has (``link_kind``/``link_id``), the link keeps ``key_id`` NULL, and the relay
gives it a derived token — replacing the stored hash — just before mailing it
(:func:`siteflow.mailed_links.token_of`). The old random token thus never opens anything, even
where PostgreSQL still holds it in a dead row version. Then ``outbox.secret`` is dropped.

Downgrade restores the column empty: a mail queued after the upgrade and still unsent then goes
without its link (its token was never stored, so there is nothing to put back).

Revision ID: 0018
Revises: 0017
"""

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

LINK_TABLES = (("approval", "approval_links"), ("password", "password_links"))


def upgrade() -> None:
    for _, table in LINK_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("key_id", sa.String(length=40), nullable=True))
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("link_kind", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("link_id", sa.String(length=36), nullable=True))
    conn = op.get_bind()
    waiting = conn.execute(sa.text("SELECT id, secret FROM outbox WHERE secret IS NOT NULL")).all()
    for row_id, secret in waiting:
        digest = hashlib.sha256(str(secret).encode("utf-8")).hexdigest()
        for kind, table in LINK_TABLES:
            link_id = conn.execute(
                sa.text(f"SELECT id FROM {table} WHERE token_sha256 = :digest"), {"digest": digest}
            ).scalar()
            if link_id is not None:
                conn.execute(
                    sa.text("UPDATE outbox SET link_kind = :kind, link_id = :link_id WHERE id = :id"),
                    {"kind": kind, "link_id": link_id, "id": row_id},
                )
                break
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("secret")


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("secret", sa.String(length=200), nullable=True))
        batch.drop_column("link_id")
        batch.drop_column("link_kind")
    for _, table in LINK_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("key_id")
