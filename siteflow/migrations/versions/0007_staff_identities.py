"""staff accounts, sign-in sessions, password links and failed sign-in counts

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staff_users",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("password_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("email = lower(email)", name="ck_staff_users_email_lowercase"),
        sa.PrimaryKeyConstraint("id", name="pk_staff_users"),
        sa.UniqueConstraint("email", name="uq_staff_users_email"),
    )
    op.create_table(
        "staff_sessions",
        sa.Column("id_sha256", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["staff_users.id"], name="fk_staff_sessions_user_id_staff_users"),
        sa.PrimaryKeyConstraint("id_sha256", name="pk_staff_sessions"),
    )
    op.create_index("ix_staff_sessions_user_id", "staff_sessions", ["user_id"])
    op.create_table(
        "password_links",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["staff_users.id"], name="fk_password_links_user_id_staff_users"),
        sa.PrimaryKeyConstraint("id", name="pk_password_links"),
        sa.UniqueConstraint("token_sha256", name="uq_password_links_token_sha256"),
    )
    op.create_index("ix_password_links_user_id", "password_links", ["user_id"])
    op.create_table(
        "signin_failures",
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("key_sha256", sa.String(length=64), nullable=False),
        sa.Column("minute", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "key_sha256", "minute", name="pk_signin_failures"),
    )
    op.create_index("ix_signin_failures_minute", "signin_failures", ["minute"])


def downgrade() -> None:
    op.drop_index("ix_signin_failures_minute", table_name="signin_failures")
    op.drop_table("signin_failures")
    op.drop_index("ix_password_links_user_id", table_name="password_links")
    op.drop_table("password_links")
    op.drop_index("ix_staff_sessions_user_id", table_name="staff_sessions")
    op.drop_table("staff_sessions")
    op.drop_table("staff_users")
