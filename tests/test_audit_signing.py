"""An audit trail no insider can rewrite (issue #10 item 4), on SQLite and PostgreSQL.

The insider here can write every table and knows how the chain is hashed: they change a
decision, recompute every hash after it and the head — the edit that `siteflow audit verify`
used to pass. Record signatures (key outside the database) name the record; a witness from a
mail sent earlier through a real SMTP server (siteflow's mail catcher) catches a chain cut
short or rebuilt by someone who holds the key too; a rotated key still verifies old records
and a retired one signs nothing new; chains written before signing existed still verify.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from models.outbox import OutboxMessage
from siteflow import audit_chain, audit_checkpoints, audit_keys, audit_report
from siteflow.audit_checkpoints import WITNESS_HEADER, Checkpoint, WitnessRefused
from siteflow.db import session_scope
from siteflow.mail_catcher import start_catcher
from siteflow.outbox_relay import relay_once
from siteflow.settings import Settings, get_settings
from tests.conftest import SQLITE_ONLY
from tests.test_audit_chain import CHEN, CODE, fill, signed_off_project, sql
from tests.test_cli_output import cli, on
from tests.test_outbox_relay import free_port

# --- what an insider with database access does -------------------------------------------------


def rows(stream: str) -> list[dict[str, Any]]:
    with session_scope() as session:
        found = session.execute(
            text("SELECT * FROM audit_events WHERE stream = :s ORDER BY seq"), {"s": stream}
        ).mappings()
        return [dict(r) for r in found]


def rehash_from(stream: str, seq: int) -> None:
    """Recompute the hash of record ``seq`` and of every record after it, and the head: the
    edit that passes a chain protected by hashes alone."""
    prev = audit_chain.GENESIS
    with session_scope() as session:
        for r in rows(stream):
            if r["seq"] >= seq:
                digest = audit_chain.record_hash(
                    prev, stream, r["seq"], r["kind"], r["actor"], r["at"], r["payload"]
                )
                session.execute(
                    text("UPDATE audit_events SET prev_hash = :p, hash = :h WHERE id = :id"),
                    {"p": prev, "h": digest, "id": r["id"]},
                )
                r["hash"] = digest
            prev = r["hash"]
        session.execute(
            text(
                "UPDATE audit_heads SET seq = (SELECT MAX(seq) FROM audit_events WHERE stream = :s), "
                "hash = :h WHERE stream = :s"
            ),
            {"s": stream, "h": prev},
        )


def rebuild_from(stream: str, seq: int, actor: str) -> None:
    """What an insider who holds the key too can do: cut the chain before record ``seq`` and
    append the same records again, freshly signed, the first one naming ``actor`` instead."""
    tail = rows(stream)[seq - 1 :]
    truncate_to(stream, seq - 1)
    with session_scope() as session:
        for n, r in enumerate(tail):
            audit_chain.append(
                session, stream, r["kind"], actor if n == 0 else r["actor"], json.loads(r["payload"])
            )


def truncate_to(stream: str, last: int) -> None:
    """Cut the chain after record ``last`` and set the head to match: every record left is
    still validly signed."""
    kept = rows(stream)[last - 1]
    sql("DELETE FROM audit_events WHERE stream = :s AND seq > :n", s=stream, n=last)
    sql("UPDATE audit_heads SET seq = :n, hash = :h WHERE stream = :s", s=stream, n=last, h=kept["hash"])


def forget_checkpoints() -> None:
    """An insider with the host too: the checkpoints table emptied and the file deleted."""
    with session_scope() as session:
        session.execute(text("DELETE FROM audit_checkpoints"))
    audit_checkpoints.checkpoints_file().unlink(missing_ok=True)


# --- a real mail to the customer ----------------------------------------------------------------


async def _relay(settings: Settings) -> int:
    return (await relay_once(settings)).sent


def send_to_customer(maildir: Path) -> Path:
    """Relay what the gates queued, then one notice to the customer; the .eml it became."""
    port = free_port()
    controller = start_catcher(maildir, "127.0.0.1", port)
    s = get_settings()
    relay = Settings(home=s.home, database_url=s.database_url, smtp_port=port)
    try:
        asyncio.run(_relay(relay))
        with session_scope() as session:
            session.add(
                OutboxMessage(
                    dedup_key="witness-test",
                    subject_ref=CODE,
                    recipient=str(CHEN),
                    title=f"[{CODE}] 勘察报告已签署 / Survey report signed",
                    body_text="您好，勘察报告已签署。/ Hello, the survey report is signed.",
                )
            )
        before = set(maildir.glob("*.eml"))
        assert asyncio.run(_relay(relay)) == 1
    finally:
        controller.stop()
    (sent,) = set(maildir.glob("*.eml")) - before
    return sent


# --- the tests ----------------------------------------------------------------------------------


def test_insider_rewrite_of_a_decision_with_recomputed_hashes_is_named(database_url: str) -> None:
    """The customer's approval (record #3, gate.decision) is rewritten to name another signer,
    in the record and in the decision table, every following hash and the head recomputed:
    verify fails and names record #3."""
    gate_id, _ = signed_off_project()
    assert audit_report.verify(CODE) == []
    decision = next(r for r in rows(CODE) if r["kind"] == "gate.decision")
    assert decision["seq"] == 3 and decision["actor"] == str(CHEN)

    sql("UPDATE audit_events SET actor = 'Li Na <li.na@siteflow.example>' WHERE id = :id", id=decision["id"])
    sql(
        "UPDATE gate_decisions SET signer_name = 'Li Na', signer_email = 'li.na@siteflow.example' "
        "WHERE gate_id = :g",
        g=gate_id,
    )
    rehash_from(CODE, 3)
    with session_scope() as session:  # the hashes alone no longer see it
        assert [
            p for p in audit_chain.verify(session, CODE) if "hash" in p.message or "follow" in p.message
        ] == []

    found = audit_report.verify(CODE)
    assert found, "a rewritten decision passed verification"
    assert found[0].startswith("record #3 (gate.decision): signature by key ed25519-")
    assert "rewritten after it was signed" in found[0]
    assert all(p.startswith(("record #3 ", "record #4 ", "record #5 ")) for p in found), found


def test_witness_from_an_earlier_mail_catches_a_truncated_chain(database_url: str, tmp_path: Path) -> None:
    """The customer's mail carries the signed head; the chain is later cut short below it and the
    published checkpoints destroyed. Every remaining record is validly signed, so only the
    witness can tell — and it names the record that is gone."""
    signed_off_project()
    eml = send_to_customer(tmp_path / "mail")
    witnessed = audit_checkpoints.read_witnesses(eml)
    (seq,) = [w.seq for w in witnessed]  # the head when the mail left: its own mail.sent follows
    assert seq == len(rows(CODE)) - 1

    mail = eml.read_text(encoding="utf-8")
    assert WITNESS_HEADER in mail
    from email import message_from_bytes, policy

    body = message_from_bytes(eml.read_bytes(), policy=policy.default).get_body(("plain",))
    assert body is not None
    plain = body.get_content()
    assert f"审计见证 / Audit witness: {CODE} 记录 / record #{seq}" in plain
    assert witnessed[0].hash in plain and "`" not in plain  # readable, no Markdown marks
    assert audit_report.verify(CODE, tuple(witnessed)) == []

    truncate_to(CODE, seq - 1)  # the records of the mails sent are gone
    forget_checkpoints()
    assert audit_report.verify(CODE) == []  # without a witness nothing shows
    found = audit_report.verify(CODE, tuple(witnessed))
    assert len(found) == 1 and found[0].startswith(f"record #{seq} (witness): missing:")
    assert f"chain ends at #{seq - 1}" in found[0]


def test_witness_from_an_earlier_mail_catches_a_chain_rebuilt_with_the_key(
    database_url: str, tmp_path: Path
) -> None:
    """An insider who holds the key too rebuilds the chain from the decision on, naming another
    signer, every record freshly signed and the document's record copied: signatures and
    document hashes hold, the witness from the customer's mail does not."""
    signed_off_project()
    eml = send_to_customer(tmp_path / "mail")
    witnessed = tuple(audit_checkpoints.read_witnesses(eml))
    (seq,) = [w.seq for w in witnessed]

    rebuild_from(CODE, 3, "Li Na <li.na@siteflow.example>")
    forget_checkpoints()
    assert audit_report.verify(CODE) == []
    assert (
        audit_report.build(CODE, with_prefect=False)["events"][2]["actor"] == "Li Na <li.na@siteflow.example>"
    )
    found = audit_report.verify(CODE, witnessed)
    assert len(found) == 1
    kind = rows(CODE)[seq - 1]["kind"]
    assert found[0].startswith(f"record #{seq} ({kind}): not the record held by the witness signed")
    assert "the chain was rebuilt from here or earlier" in found[0]


def test_published_checkpoints_catch_truncation_without_a_witness(database_url: str) -> None:
    """`siteflow audit checkpoint`'s signed head, in the file outside the database, catches a
    cut chain even after the checkpoints table is emptied; a forged checkpoint row is named."""
    fill("CP-A", 4)
    with session_scope() as session:
        cp = audit_checkpoints.sign_head(session, "CP-A", "checkpoint")
    assert cp is not None and cp.seq == 4
    lines = audit_checkpoints.checkpoints_file().read_text().splitlines()
    assert json.loads(lines[-1])["seq"] == 4
    fill("CP-A", 1)
    truncate_to("CP-A", 3)
    with session_scope() as session:
        session.execute(text("DELETE FROM audit_checkpoints"))
        found = audit_checkpoints.check(session, "CP-A")
    assert [str(p) for p in found] == [
        str(
            audit_chain.ChainProblem(
                4,
                "witness",
                f"missing: the checkpoint published {cp.signed:%Y-%m-%d %H:%M:%S} UTC holds record #4, "
                "but the chain ends at #3: records were cut off the end or the chain was rebuilt",
            )
        )
    ]


def test_rotated_key_verifies_old_records_and_a_retired_key_signs_nothing_new(database_url: str) -> None:
    """Rotation retires the key (its private file deleted) and makes the next; records and
    checkpoints it signed still verify; it refuses to sign again, and a signature made with
    its stolen copy after retirement is named."""
    fill("ROT", 3)
    with session_scope() as session:
        before = audit_checkpoints.sign_head(session, "ROT", "checkpoint")
    directory = audit_keys.keys_dir()
    old_key = audit_keys.signing_key()
    stolen = (directory / f"{old_key.key_id}.pem").read_bytes()
    assert (directory / f"{old_key.key_id}.pem").stat().st_mode & 0o777 == 0o600

    retired, new = audit_keys.rotate()
    assert retired is not None and retired.key_id == old_key.key_id and retired.retired_at == new.valid_from
    assert not (directory / f"{old_key.key_id}.pem").exists()
    fill("ROT", 2)
    assert [r["key_id"] for r in rows("ROT")] == [old_key.key_id] * 3 + [new.key_id] * 2
    with session_scope() as session:
        assert audit_chain.verify(session, "ROT") == []
        assert audit_checkpoints.check(session, "ROT", [before] if before else []) == []
    with pytest.raises(audit_keys.KeyRetired):
        audit_keys.signer_for(old_key.key_id)
    assert audit_keys.signing_key().key_id == new.key_id

    # the retired key's stolen copy signs a record dated after its retirement: named
    (directory / f"{old_key.key_id}.pem").write_bytes(stolen)
    audit_keys._load_private.cache_clear()
    thief = audit_keys._load_private(directory / f"{old_key.key_id}.pem", old_key.key_id)
    last = rows("ROT")[-1]
    sql(
        "UPDATE audit_events SET key_id = :k, signature = :s WHERE id = :id",
        k=old_key.key_id,
        s=thief.sign(audit_chain.signed_message("ROT", last["seq"], last["hash"])),
        id=last["id"],
    )
    with session_scope() as session:
        (problem,) = audit_chain.verify(session, "ROT")
    assert problem.seq == 5 and "after it was retired" in problem.message


def test_chains_written_before_signing_still_verify(database_url: str) -> None:
    """Migration 0010 leaves old records unsigned: they verify as "unsigned before <date>", the
    first signed record after them ties them in, and stripping a later record's signature is
    caught."""
    from alembic import command

    from siteflow.db import alembic_config

    config = alembic_config(database_url)
    command.downgrade(config, "0009")  # the tables as they were before signing
    long_ago = datetime.now(UTC) - timedelta(days=400)
    prev = audit_chain.GENESIS
    with session_scope() as session:
        for seq in (1, 2, 3):
            at = (long_ago + timedelta(minutes=seq)).isoformat(timespec="microseconds")
            payload = audit_chain.canonical({"old": seq})
            digest = audit_chain.record_hash(prev, "OLD", seq, "test.old", "tester", at, payload)
            session.execute(
                text(
                    "INSERT INTO audit_events (stream, seq, kind, actor, at, payload, prev_hash, hash)"
                    " VALUES ('OLD', :seq, 'test.old', 'tester', :at, :p, :prev, :h)"
                ),
                {"seq": seq, "at": at, "p": payload, "prev": prev, "h": digest},
            )
            prev = digest
        session.execute(
            text("INSERT INTO audit_heads (stream, seq, hash) VALUES ('OLD', 3, :h)"), {"h": prev}
        )
    command.upgrade(config, "head")
    assert not (audit_keys.keys_dir() / audit_keys.KEYRING).exists()  # before signing existed
    with session_scope() as session:
        assert audit_chain.verify(session, "OLD") == []  # no key yet: nothing to hold them to
    fill("OLD", 1)  # the first signed record, the key made on the way
    with session_scope() as session:
        assert audit_chain.verify(session, "OLD") == []
        assert audit_chain.unsigned_before(audit_chain.events_for(session, "OLD")) == 3
    with session_scope() as session:
        events = audit_chain.events_for(session, "OLD")
    notes = audit_report._chain_notes(events, [], audit_keys.load_keyring(), 0)
    assert notes[0].startswith("records #1–#3 unsigned: written before signing began on ")

    sql("UPDATE audit_events SET key_id = NULL, signature = NULL WHERE stream = 'OLD' AND seq = 4")
    with session_scope() as session:
        (problem,) = audit_chain.verify(session, "OLD")
    assert problem.seq == 4 and "unsigned" in problem.message and "signature was removed" in problem.message


def test_a_forged_witness_is_refused(database_url: str) -> None:
    """A witness not signed by a siteflow key proves nothing; it is refused, not counted."""
    fill("FORGE", 2)
    with session_scope() as session:
        real = audit_checkpoints.sign_head(session, "FORGE", "checkpoint")
    assert real is not None
    fake = Checkpoint(real.stream, 1, "f" * 64, real.signed_at, real.key_id, real.signature, "mail")
    with session_scope() as session, pytest.raises(WitnessRefused, match="not genuine"):
        audit_checkpoints.check(session, "FORGE", [fake])


@SQLITE_ONLY
def test_cli_checkpoint_and_verify_with_a_mailed_witness(database_url: str, tmp_path: Path) -> None:
    """The commands a person runs: `audit checkpoint` publishes, `audit verify CODE --witness
    MAIL.eml` passes on the untouched chain and exits 3 naming the record once it was rebuilt."""
    home = get_settings().home
    signed_off_project()
    eml = send_to_customer(tmp_path / "mail")
    env = on(database_url, home)
    published = cli(env, "audit", "checkpoint")
    assert f"{CODE}: record #{len(rows(CODE))} " in published.stdout
    rotated = cli(env, "audit", "keys", "rotate")
    assert "retired ed25519-" in rotated.stdout and "signing with ed25519-" in rotated.stdout
    ok = cli(env, "audit", "verify", CODE, "--witness", str(eml))  # signed by the retired key
    assert f"{CODE}: audit trail verified" in ok.stdout and "witness" in ok.stdout
    html = audit_report.render_html(audit_report.build(CODE, with_prefect=False))
    assert "checkpoint(s) published" in html and "records signed by ed25519-" in html

    rebuild_from(CODE, 3, "Li Na <li.na@siteflow.example>")
    forget_checkpoints()
    bad = cli(env, "audit", "verify", CODE, "--witness", str(eml), check=False)
    assert bad.returncode == 3, bad.stdout + bad.stderr
    said = " ".join(bad.stderr.split())
    (seq,) = [w.seq for w in audit_checkpoints.read_witnesses(eml)]
    assert f"record #{seq} (mail.sent): not the record held by the witness signed" in said
