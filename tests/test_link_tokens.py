"""Issue #10 item 3 on every backend: a mailed link's token is never stored, so no database
file holds it — not SQLite's file or WAL, not PostgreSQL's table files or WAL segments, where a
nulled value would survive in the dead row version until VACUUM. The token is derived from the
link's id under a key kept outside the database (siteflow/link_keys.py); the mailed link still
opens, over real SMTP and the real web; a token forged for a real link id opens nothing; the
key file is 0600 and never logged; rotation keeps every link working; a mail that waited in the
outbox across the upgrade keeps its link.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import os
import re
import stat
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import create_engine, select, text

from models.approval_link import ApprovalLink
from models.outbox import LinkKind, OutboxMessage
from siteflow import link_keys
from siteflow.approval_links import find_link, issue_link, token_hash
from siteflow.db import engine_for, session_scope
from siteflow.identity.roles import StaffRole
from siteflow.identity.users import NewUser, add_user
from siteflow.mailed_links import keys_needed, tend_keys
from siteflow.outbox_relay import relay_once
from siteflow.settings import Settings, get_settings
from tests.conftest import PG_ADMIN_URL
from tests.test_approval_links import decisions, form_token, setup_gate, web  # noqa: F401  (fixture)
from tests.test_outbox_relay import Inbox, free_port

LI = NewUser(name="李伟 Li Wei", email="li.wei@example.com", roles=[StaffRole.PM])
LINK = re.compile(r"(http://\S+/(?:a|reset)/([A-Za-z0-9_\-]{20,}))")


def send_outbox() -> dict[str, list[str]]:
    """Send every queued mail to a real SMTP server; each recipient's mailed link URLs."""
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        asyncio.run(relay_once(Settings(smtp_port=port)))
    finally:
        controller.stop()
    links: dict[str, list[str]] = {}
    for msg in inbox.messages:
        body = msg.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
        to = re.search(r"<(.+)>", str(msg["To"])).group(1)  # type: ignore[union-attr]
        links.setdefault(to, []).extend(url for url, _ in LINK.findall(body))
    return links


def database_files(url: str) -> list[Path]:
    """The files a copy of the database is: SQLite's file and WAL; PostgreSQL's table files
    (heap and TOAST, every segment) of the tables that touch links, written to disk by a
    CHECKPOINT — no VACUUM — and every WAL segment on the server."""
    if url.startswith("sqlite"):
        db = Path(url.split("///", 1)[1])
        return [p for p in db.parent.glob(db.name + "*") if p.is_file()]
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("CHECKPOINT"))
        data = Path(str(conn.execute(text("SHOW data_directory")).scalar()))
    admin.dispose()
    files: list[Path] = []
    with engine_for(url).connect() as conn:
        for table in ("outbox", "approval_links", "password_links"):
            relations = conn.execute(
                text(
                    "SELECT pg_relation_filepath(c.oid), pg_relation_filepath(NULLIF(c.reltoastrelid, 0))"
                    " FROM pg_class c WHERE c.relname = :t"
                ),
                {"t": table},
            ).one()
            for rel in (str(r) for r in relations if r):
                files += [p for p in (data / rel).parent.glob(Path(rel).name + "*") if p.is_file()]
    assert len(files) >= 3, files  # the test must read the real tables
    return files + sorted((data / "pg_wal").glob("0*"))


def holding(files: list[Path], tokens: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in files:
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # a WAL segment recycled meanwhile
            continue
        for token in tokens:
            if token.encode() in data:
                found.setdefault(token[:6] + "…", []).append(path.name)
    return found


def test_no_database_file_holds_a_mailed_token(web: str, database_url: str) -> None:  # noqa: F811
    """Issue #10 item 3: after the approval and password links were mailed and used, no byte
    sequence of any token is in any database file, on SQLite and on PostgreSQL (where a token
    kept in the outbox row and nulled after sending stays in the dead row version)."""
    form, gate_id = setup_gate()
    add_user(LI, None, "host-admin:test")  # a set-password link is mailed too
    links = send_outbox()
    approval = [u for urls in links.values() for u in urls if "/a/" in u]
    password = links[LI.email]
    assert len(approval) >= 2 and len(password) == 1 and "/reset/" in password[0]
    tokens = [u.rsplit("/", 1)[1] for u in approval + password]
    with httpx.Client() as http:  # the derived tokens open their pages, over real HTTP
        page = http.get(approval[0])
        assert page.status_code == 200 and "Sign the survey report" in page.text
        done = http.post(approval[0], data={"decision": "approve", "form_token": form_token(page.text)})
        assert done.status_code == 200 and decisions(gate_id) == 1
        reset = http.get(password[0])
        assert reset.status_code == 200 and LI.email in reset.text
    leaks = holding(database_files(database_url), tokens)
    assert leaks == {}, f"tokens readable in database files: {leaks}"


def test_a_forged_token_for_a_real_link_id_opens_nothing(web: str) -> None:  # noqa: F811
    """Knowing a link's id (a database read) is not enough: the token needs the key. Tokens
    made from the id without it, with another key, or for another kind of link are refused."""
    _, gate_id = setup_gate()
    links = send_outbox()
    url = next(u for urls in links.values() for u in urls)
    base = url.rsplit("/", 1)[0]
    with session_scope() as session:
        link = session.execute(
            select(ApprovalLink).where(ApprovalLink.token_sha256 == token_hash(url.rsplit("/", 1)[1]))
        ).scalar_one()
        link_id, key_id = link.id, link.key_id
    assert key_id is not None

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    real = link_keys.load(key_id)
    message = b"\0".join((b"siteflow-link-v1", b"approval", link_id.encode()))
    forged = [
        link_keys.LinkKey(key_id, os.urandom(32)).token(LinkKind.APPROVAL, link_id),  # another key
        link_keys.LinkKey(key_id, b"").token(LinkKind.APPROVAL, link_id),  # no key
        b64(hmac.new(b"", message, hashlib.sha256).digest()),
        b64(hashlib.sha256(message).digest()),
        b64(hashlib.sha256(link_id.encode()).digest()),
        real.token(LinkKind.PASSWORD, link_id),  # the right key, for a password link of that id
        link_id,
    ]
    assert real.token(LinkKind.APPROVAL, link_id) == url.rsplit("/", 1)[1]
    with httpx.Client() as http:
        refused = [http.get(f"{base}/{t}").status_code for t in forged]
        assert http.get(url).status_code == 200
    assert refused == [404] * len(forged)
    assert decisions(gate_id) == 0


def test_the_link_key_is_made_once_private_and_never_logged(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The first link makes the key — one key however many issue at once — as a 0600 file in a
    0700 directory; neither the key (raw, hex or base64) nor a token is in any log line."""
    caplog.set_level(logging.DEBUG)
    where = link_keys.keys_dir()
    assert not where.exists()
    with ThreadPoolExecutor(8) as pool:
        made = set(pool.map(lambda _: link_keys.current_key().key_id, range(8)))
    assert len(made) == 1 and link_keys.key_ids() == list(made)
    key_file = where / f"{made.pop()}{link_keys.SUFFIX}"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and stat.S_IMODE(where.stat().st_mode) == 0o700
    key = key_file.read_bytes()
    assert len(key) == 32
    key_file.chmod(0o644)  # loosened by hand: put back on the next read
    setup_gate()
    links = send_outbox()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    tokens = [u.rsplit("/", 1)[1] for urls in links.values() for u in urls]
    assert tokens
    logged = "\n".join(r.getMessage() for r in caplog.records) + caplog.text
    for needle in [
        key.hex(),
        base64.b64encode(key).decode(),
        base64.urlsafe_b64encode(key).decode(),
        *tokens,
    ]:
        assert needle not in logged
    assert key not in logged.encode("utf-8", "surrogateescape")
    assert "secret=" not in repr(link_keys.load(key_file.stem))  # a repr never shows the key
    fresh = link_keys.rotate()  # written 0600 from the start, not only put right when read
    assert stat.S_IMODE((where / f"{fresh.key_id}{link_keys.SUFFIX}").stat().st_mode) == 0o600


def test_rotation_keeps_every_link_and_deletes_a_key_once_its_mails_are_sent(web: str) -> None:  # noqa: F811
    """A link's mail is derived from its own key, kept until that mail is sent; checking a
    token needs no key. After rotation both the old and the new links open; once the old key's
    mails are sent (and the grace for a process that read it has passed) its file is gone —
    nothing on the host can give back the token any more — and its link still opens."""
    _, first_gate = setup_gate()
    old = link_keys.current_key()
    assert link_keys.rotate_if_due(timedelta(hours=get_settings().link_key_hours)) is False  # not due yet
    rotated = datetime.now(UTC) + timedelta(hours=1)
    assert link_keys.rotate_if_due(timedelta(hours=1), now=rotated) is True
    assert link_keys.rotate_if_due(timedelta(hours=1), now=rotated) is False  # once, however many ask
    later = rotated + link_keys.GRACE + timedelta(seconds=1)
    new = link_keys.current_key()
    assert new.key_id != old.key_id

    assert old.key_id in keys_needed()  # its gate's mails are not sent yet
    assert link_keys.prune(keys_needed(), now=later) == []
    with session_scope() as session:  # a reminder-like link issued after the rotation
        reissued = issue_link(session, first_gate, "陈静 Chen Jing", "chen@customer.example", None)
        assert session.get(ApprovalLink, reissued) is not None
    with session_scope() as session:
        session.add(
            OutboxMessage(
                dedup_key=f"test-reissued:{reissued}",
                subject_ref="ENG-1",
                recipient="陈静 Chen Jing <chen@customer.example>",
                title="again",
                body_text="{approval_link}",
                link_kind=LinkKind.APPROVAL.value,
                link_id=reissued,
            )
        )
    links = send_outbox()
    urls = [u for us in links.values() for u in us]
    with session_scope() as session:
        kinds = {find_link(session, u.rsplit("/", 1)[1]).key_id for u in urls}  # type: ignore[union-attr]
    assert kinds == {old.key_id, new.key_id}  # mails from both keys went out
    assert keys_needed() == set()
    assert link_keys.prune(set(), now=rotated) == []  # within the grace: a process may still issue with it
    assert link_keys.prune(keys_needed(), now=later) == [old.key_id]
    assert link_keys.key_ids() == [new.key_id]  # the current key is never deleted
    with httpx.Client() as http:
        assert [http.get(u).status_code for u in urls] == [200] * len(urls)  # all still open


def test_a_mail_whose_link_key_is_gone_fails_and_says_what_to_do(database_url: str) -> None:
    """A key directory lost (or a relay given another one) never mails a link that would not
    open: the row fails for good, saying why and what to do."""
    setup_gate()
    for path in link_keys.keys_dir().glob("*.key"):
        path.unlink()
    link_keys.current_key()  # another key appears (e.g. the next link issued)
    assert send_outbox() == {}
    with session_scope() as session:
        rows = session.execute(select(OutboxMessage)).scalars().all()
    assert rows and all(r.status == "failed" for r in rows)
    assert all(
        "is not in" in (r.last_error or "") and "issue a new link" in (r.last_error or "") for r in rows
    )


def test_a_mail_waiting_in_the_outbox_at_the_upgrade_keeps_its_link(database_url: str) -> None:
    """A mail queued before derived tokens held its random token in `outbox.secret`. The upgrade
    points it at its link; the relay re-keys the link before mailing it, so the mailed link
    opens and the old token — which PostgreSQL may still hold in a dead row — opens nothing."""
    from alembic import command

    from siteflow.db import alembic_config

    config = alembic_config(database_url)
    command.downgrade(config, "0017")
    old_token = "legacy-random-token-" + os.urandom(12).hex()
    with engine_for(database_url).begin() as conn:
        conn.execute(
            text(
                "INSERT INTO gates (id, subject, key, kind, rule, title, description, parties, decisions,"
                " data_required_for, ends_at_once, status, opened_at)"
                " VALUES ('g1', 'P-OLD', 'survey-report-signoff', 'customer-signoff', 'ENG-8', 'Survey', '',"
                " '[]', '[\"approve\"]', '[]', '[]', 'open', CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO approval_links (id, gate_id, recipient_name, recipient_email,"
                " token_sha256, created_at)"
                " VALUES ('l1', 'g1', 'Chen Jing', 'chen@customer.example', :h, CURRENT_TIMESTAMP)"
            ),
            {"h": token_hash(old_token)},
        )
        conn.execute(
            text(
                "INSERT INTO outbox (id, dedup_key, subject_ref, recipient, title, body_text, status,"
                " attempts, secret, created_at) VALUES ('m1', 'gate-opened:g1:chen', 'P-OLD',"
                " 'Chen Jing <chen@customer.example>', 'Decide', 'Open: {approval_link}', 'pending', 0, :s,"
                " CURRENT_TIMESTAMP)"
            ),
            {"s": old_token},
        )
    command.upgrade(config, "head")
    with session_scope() as session:
        row = session.get(OutboxMessage, "m1")
        assert row is not None and (row.link_kind, row.link_id) == ("approval", "l1")
        assert find_link(session, old_token) is not None  # still the old link until it is mailed
    links = send_outbox()
    (url,) = links["chen@customer.example"]
    token = url.rsplit("/", 1)[1]
    with session_scope() as session:
        link = find_link(session, token)
        assert link is not None and link.id == "l1" and link.key_id is not None
        assert find_link(session, old_token) is None
        assert session.get(OutboxMessage, "m1").status == "sent"  # type: ignore[union-attr]


def test_the_relay_rotates_the_link_key_when_it_is_due(database_url: str) -> None:
    """What the relay runs once a minute: a new key once the current one is `link_key_hours`
    old (0: never); the old one is kept while within the grace."""
    first = link_keys.current_key()
    assert tend_keys(Settings(link_key_hours=0)) == [] and link_keys.key_ids() == [first.key_id]
    assert tend_keys(Settings(link_key_hours=1)) == [] and link_keys.key_ids() == [first.key_id]
    time.sleep(0.2)
    assert tend_keys(Settings(link_key_hours=0.1 / 3600)) == []  # rotated; the old key is in its grace
    assert link_keys.key_ids()[0] == first.key_id and len(link_keys.key_ids()) == 2
