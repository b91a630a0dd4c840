"""The Alembic migrations build exactly the tables the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from models.base import Base
from siteflow.db import engine_for


def test_migrations_match_the_models(database_url: str) -> None:
    with engine_for(database_url).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_earlier_signatures_migrate_as_identity_not_verified(database_url: str) -> None:
    """Issue #9 item 9: a signature recorded before proofs existed keeps its door and asserted
    identity and reads as "identity not verified"."""
    from alembic import command
    from sqlalchemy import select, text

    from models.gate import GateDecision
    from siteflow.db import alembic_config, session_scope

    config = alembic_config(database_url)
    command.downgrade(config, "0007")
    with engine_for(database_url).begin() as conn:
        conn.execute(
            text(
                "INSERT INTO gates (id, subject, key, kind, rule, title, description, parties, decisions,"
                " data_required_for, ends_at_once, status, opened_at)"
                " VALUES ('g1', 'P-OLD', 'survey-report-signoff', 'customer-signoff', 'ENG-8', 'Survey', '',"
                " '[]', '[\"approve\"]', '[]', '[]', 'decided', CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO gate_decisions (id, gate_id, party, decision, signer_name, signer_email, role,"
                " comment, door, decided_at)"
                " VALUES ('d1', 'g1', 'customer', 'approve', 'Chen Jing', 'chen@customer.example',"
                " 'customer', '', 'cli', CURRENT_TIMESTAMP)"
            )
        )
    command.upgrade(config, "head")
    with session_scope() as session:
        old = session.execute(select(GateDecision).where(GateDecision.id == "d1")).scalar_one()
        assert (old.door, old.signer, old.proof) == ("cli", "Chen Jing <chen@customer.example>", "unverified")
        assert old.provenance == "cli, identity not verified"
