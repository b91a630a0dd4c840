"""upgrade windows, elements, step journal; gate deadline default

Revision ID: 0004
Revises: 0003
"""

from alembic import op
import sqlalchemy as sa


revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "upgrade_windows",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("local_date", sa.Date(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("flow_run_id", sa.String(length=36), nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_upgrade_windows")),
        sa.UniqueConstraint("flow_run_id", name=op.f("uq_upgrade_windows_flow_run_id")),
    )
    with op.batch_alter_table("upgrade_windows", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_upgrade_windows_local_date"), ["local_date"], unique=False)

    op.create_table(
        "upgrade_elements",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("window_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=24), nullable=True),
        sa.Column("decided_by", sa.String(length=600), nullable=True),
        sa.Column("decision_door", sa.String(length=16), nullable=True),
        sa.Column("version_before", sa.String(length=64), nullable=True),
        sa.Column("version_after", sa.String(length=64), nullable=True),
        sa.Column("snapshot_before", sa.JSON(), nullable=True),
        sa.Column("snapshot_after", sa.JSON(), nullable=True),
        sa.Column("differences", sa.JSON(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["window_id"], ["upgrade_windows.id"], name=op.f("fk_upgrade_elements_window_id_upgrade_windows")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_upgrade_elements")),
        sa.UniqueConstraint("window_id", "name", name=op.f("uq_upgrade_elements_window_id_name")),
    )
    with op.batch_alter_table("upgrade_elements", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_upgrade_elements_name"), ["name"], unique=False)
        batch_op.create_index(batch_op.f("ix_upgrade_elements_window_id"), ["window_id"], unique=False)

    op.create_table(
        "upgrade_journal",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("window_id", sa.String(length=40), nullable=False),
        sa.Column("element", sa.String(length=64), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("item", sa.String(length=64), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("operator", sa.String(length=200), nullable=False),
        sa.Column("command", sa.Text(), nullable=False),
        sa.Column("expected", sa.Text(), nullable=False),
        sa.Column("output", sa.Text(), nullable=False),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["window_id"], ["upgrade_windows.id"], name=op.f("fk_upgrade_journal_window_id_upgrade_windows")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_upgrade_journal")),
        sa.UniqueConstraint(
            "window_id",
            "element",
            "stage",
            "item",
            "attempt",
            name=op.f("uq_upgrade_journal_window_id_element_stage_item_attempt"),
        ),
    )
    with op.batch_alter_table("upgrade_journal", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_upgrade_journal_window_id"), ["window_id"], unique=False)

    with op.batch_alter_table("gates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("default_decision", sa.String(length=32), nullable=True))


def downgrade() -> None:

    with op.batch_alter_table("gates", schema=None) as batch_op:
        batch_op.drop_column("default_decision")

    with op.batch_alter_table("upgrade_journal", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_upgrade_journal_window_id"))

    op.drop_table("upgrade_journal")
    with op.batch_alter_table("upgrade_elements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_upgrade_elements_window_id"))
        batch_op.drop_index(batch_op.f("ix_upgrade_elements_name"))

    op.drop_table("upgrade_elements")
    with op.batch_alter_table("upgrade_windows", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_upgrade_windows_local_date"))

    op.drop_table("upgrade_windows")
