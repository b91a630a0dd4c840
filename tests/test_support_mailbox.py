"""The support mailbox read by IMAP from a real server (issue #11): a private Dovecot instance
(tests/imap_server.py), mail put in by IMAP APPEND as a mail server's delivery would.

- The ``mail-reader`` service of a real stack reads it over STARTTLS: a new incident
  (received = the mail's Date, INC-4), a follow-up by key (COM-2), an unknown sender routed to
  the duty owner (INC-9); each marked seen; a second pass does nothing; the server stopped is
  said once in the reader's log (no password), and mail put in after it is back is read.
- A crash between keeping a mail and marking it seen: the next pass marks it, nothing twice.
- A refused login is said once, without the password, and leaves the mail unseen.
- Mail kept but left unread by a crash is read on the keeper's next pass, once each.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from models.incident import Incident, IncidentEventRow
from models.incident_mail import InboundMail
from models.outbox import OutboxMessage
from siteflow.db import session_scope
from siteflow.incidents import mail_intake, records
from siteflow.incidents.mailbox_address import MailboxSettingRefused, mailbox_address
from siteflow.incidents.mailbox_reader import OutageLog, PassOutcome, read_mailbox
from siteflow.settings import Settings
from siteflow.stack import Stack, StackError
from tests.conftest import using
from tests.imap_server import DovecotServer
from tests.test_incident_e2e import wait_for
from tests.test_incident_mail import CUSTOMER, DUTY, mail_contract

PASSWORD = "imap-Pa55-word-never-logged"


@pytest.fixture(scope="module")
def imap() -> Iterator[DovecotServer]:
    with DovecotServer(password=PASSWORD) as server:
        assert server.start_seconds < 5, f"dovecot took {server.start_seconds:.2f}s to listen"
        yield server


@pytest.fixture(scope="module")
def secrets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The password file (0600), kept apart from the server's directory."""
    directory = tmp_path_factory.mktemp("imap-secrets")
    (directory / "password").write_text(PASSWORD + "\n")
    (directory / "password").chmod(0o600)
    (directory / "wrong").write_text("not-the-password\n")
    return directory


def support_mail(sender: str, subject: str, body: str, sent: datetime) -> bytes:
    message = EmailMessage()
    message["From"], message["To"] = sender, "support@siteflow.localhost"
    message["Subject"], message["Date"] = subject, email.utils.format_datetime(sent)
    message["Message-ID"] = email.utils.make_msgid(domain="nordnetz.example")
    message.set_content(body)
    return bytes(message)


def row_of(raw: bytes) -> InboundMail | None:
    with session_scope() as session:
        row = session.scalars(  # by Message-ID: a server hands the bytes back with CRLF line ends
            select(InboundMail).where(InboundMail.mail_key == mail_intake.mail_key(raw))
        ).one_or_none()
        if row is not None:
            session.expunge(row)
        return row


def reader_settings(home: Path, imap: DovecotServer, secrets: Path, **more: Any) -> Settings:
    given: dict[str, Any] = {
        "home": home,
        "support_imap_url": f"imap://desk@127.0.0.1:{imap.port}/INBOX",  # STARTTLS; the stack reads support@
        "support_imap_password_file": secrets / "password",
        "support_imap_ca_file": imap.cert,
        "support_duty": f"Duty Desk <{DUTY}>",
    }
    return Settings(**(given | more))


@pytest.fixture
def imap_stack(stack_factory: Any, imap: DovecotServer, secrets: Path, tmp_path_factory: Any) -> Any:
    return stack_factory(
        "sqlite",
        "imap",
        support_imap_url=f"imap://support@127.0.0.1:{imap.port}/INBOX",  # STARTTLS
        support_imap_password_file=secrets / "password",
        support_imap_ca_file=imap.cert,
        support_imap_poll_seconds=0.2,
        support_duty=f"Duty Desk <{DUTY}>",
    )


def test_the_reader_service_opens_follows_up_routes_and_rides_out_an_outage(
    imap_stack: Any, imap: DovecotServer
) -> None:
    handle = imap_stack
    assert "mail-reader" in handle.stack.processes
    with handle.active():
        with session_scope() as session:
            records.save_contract(session, contract=mail_contract())
        sent = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=7)

        # a new incident: received = the mail's own Date (INC-4), channel email, then seen
        first = support_mail(f"Jana Vogel <{CUSTOMER}>", "Voice down in Mitte", "No dial tone.", sent)
        uid = imap.append(first)
        opened = wait_for(lambda: (r := row_of(first)) is not None and r.outcome == "opened" and r, "opened")
        key = opened.incident_key
        with session_scope() as session:
            incident = session.get(Incident, key)
            assert incident is not None
            assert incident.channel == "email" and incident.received_at == sent
            assert incident.contract_code == "C-MAIL-1" and "No dial tone" in incident.reported
        wait_for(lambda: "\\Seen" in imap.flags()[uid], "the mail marked seen")

        # a follow-up naming the key: a customer message on its record (COM-2)
        follow = support_mail(CUSTOMER, f"Re: [{key}] We have your report", "Call me before 10:00.", sent)
        uid = imap.append(follow)
        wait_for(lambda: (r := row_of(follow)) is not None and r.outcome == "added", "the follow-up added")
        with session_scope() as session:
            said = session.scalars(
                select(IncidentEventRow).where(
                    IncidentEventRow.incident_key == key, IncidentEventRow.kind == "customer-message"
                )
            ).all()
            assert len(said) == 1 and "before 10:00" in said[0].data["text"]
        wait_for(lambda: "\\Seen" in imap.flags()[uid], "the follow-up marked seen")

        # an unknown sender: kept and routed to the duty owner (INC-9)
        stranger = f"someone-{time.time_ns()}@elsewhere.example"
        odd = support_mail(stranger, "Our router is down", "Help!", sent)
        uid = imap.append(odd)
        unknown = wait_for(
            lambda: (r := row_of(odd)) is not None and r.outcome == "unknown-sender" and r, "routed"
        )
        with session_scope() as session:
            to_duty = session.scalars(
                select(OutboxMessage).where(OutboxMessage.dedup_key.like(f"support-mail:{unknown.id}:%"))
            ).all()
            assert [m.recipient for m in to_duty] == [f"Duty Desk <{DUTY}>"]
        wait_for(lambda: "\\Seen" in imap.flags()[uid], "the unknown sender's mail marked seen")

        # a second pass does nothing: every mail is seen, no row or incident more
        with session_scope() as session:
            rows = session.scalar(select(func.count()).select_from(InboundMail))
        again = read_mailbox(handle.settings)
        assert again.outcome is PassOutcome.READ and again.results == ()
        with session_scope() as session:
            assert session.scalar(select(func.count()).select_from(InboundMail)) == rows

        # the server stops: said once in the reader's log, never the password; mail waits
        log = handle.settings.home / "logs" / "mail-reader.log"
        imap.stop()
        time.sleep(4)  # passes at 0.2 s, doubling: several failed attempts
        imap.start()
        late = support_mail(stranger, "Still down", "Anyone?", sent)
        uid = imap.append(late)
        wait_for(lambda: (r := row_of(late)) is not None and r.outcome == "unknown-sender", "read after it")
        wait_for(lambda: "\\Seen" in imap.flags()[uid], "the late mail marked seen")
        text = wait_for(lambda: "read again after" in (t := log.read_text()) and t, "the outage's end said")
        assert text.count("the support mailbox cannot be read") == 1, text
        assert "cannot be read (unreachable)" in text and f"support@127.0.0.1:{imap.port}" in text
        assert PASSWORD not in text


def test_a_crash_between_keeping_and_marking_reads_nothing_twice(
    database_url: str, imap: DovecotServer, secrets: Path, tmp_path: Path
) -> None:
    settings = reader_settings(tmp_path, imap, secrets)
    stranger = f"crash-{time.time_ns()}@elsewhere.example"
    raw = support_mail(stranger, "Line dead", "Since noon.", datetime.now(UTC) - timedelta(minutes=3))
    uid = imap.append(raw, "desk")
    # what the reader did before it was killed: the intake kept and read it, the mail not yet seen
    before = mail_intake.receive_mail(raw, envelope_from=stranger, settings=settings)
    assert "\\Seen" not in imap.flags("desk")[uid]

    taken = read_mailbox(settings)
    assert taken.outcome is PassOutcome.READ
    assert [(r.mail_id, r.outcome.value) for r in taken.results] == [(before.mail_id, "unknown-sender")]
    assert "\\Seen" in imap.flags("desk")[uid]
    with session_scope() as session:
        assert (
            session.scalar(select(func.count()).where(InboundMail.mail_key == mail_intake.mail_key(raw))) == 1
        )
        told = session.scalars(
            select(OutboxMessage).where(OutboxMessage.dedup_key.like(f"support-mail:{before.mail_id}:%"))
        ).all()
        assert len(told) == 1  # the duty owner heard of it once
    assert read_mailbox(settings).results == ()  # and the next pass has nothing


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_refused_login_is_said_once_without_the_password_and_loses_nothing(
    database_url: str, imap: DovecotServer, secrets: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stranger = f"login-{time.time_ns()}@elsewhere.example"
    raw = support_mail(stranger, "Fax broken", "Since Monday.", datetime.now(UTC) - timedelta(minutes=1))
    uid = imap.append(raw, "desk")
    wrong = reader_settings(tmp_path, imap, secrets, support_imap_password_file=secrets / "wrong")
    outages = OutageLog(poll_seconds=1.0)
    caplog.set_level(logging.DEBUG, logger="siteflow.incidents.mailbox_reader")
    delays = []
    for _ in range(3):
        result = read_mailbox(wrong)
        assert result.outcome is PassOutcome.REFUSED
        assert "refused the login as desk" in result.problem and "PASSWORD_FILE" in result.problem
        delays.append(outages.after(result))
    assert delays == [2.0, 4.0, 8.0]  # backed off
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "refused the login" in warnings[0]
    assert "\\Seen" not in imap.flags("desk")[uid] and row_of(raw) is None  # still waiting on the server

    right = reader_settings(tmp_path, imap, secrets)  # the password file put right: no restart
    taken = read_mailbox(right)
    assert outages.after(taken) == 1.0 and "read again after 3 failed attempt(s)" in caplog.text
    assert [r.outcome.value for r in taken.results] == ["unknown-sender"] and "\\Seen" in imap.flags("desk")[
        uid
    ]
    assert PASSWORD not in caplog.text and "not-the-password" not in caplog.text

    # TLS from the first byte (imaps://) with the test CA; a certificate nobody vouches for is refused
    tls = reader_settings(tmp_path, imap, secrets, support_imap_url=f"imaps://desk@127.0.0.1:{imap.tls_port}")
    assert read_mailbox(tls).outcome is PassOutcome.READ
    untrusted = read_mailbox(tls.model_copy(update={"support_imap_ca_file": None}))
    assert untrusted.outcome is PassOutcome.REFUSED and "certificate verify failed" in untrusted.problem


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_mail_the_database_cannot_keep_stays_unseen(
    database_url: str, imap: DovecotServer, secrets: Path, tmp_path: Path
) -> None:
    stranger = f"dbdown-{time.time_ns()}@elsewhere.example"
    raw = support_mail(stranger, "Modem dead", "Since 7.", datetime.now(UTC) - timedelta(minutes=2))
    uid = imap.append(raw, "desk")
    gone = reader_settings(
        tmp_path, imap, secrets, database_url="postgresql+psycopg://siteflow@127.0.0.1:9/gone"
    )
    with using(gone):  # the database is down: nothing may be marked seen
        held = read_mailbox(gone)
    assert held.outcome is PassOutcome.READ and held.held >= 1 and held.results == ()
    assert "\\Seen" not in imap.flags("desk")[uid]
    back = reader_settings(tmp_path, imap, secrets)  # the database is back: the next pass takes it
    assert read_mailbox(back).outcome is PassOutcome.READ
    row = row_of(raw)
    assert row is not None and row.outcome == "unknown-sender" and "\\Seen" in imap.flags("desk")[uid]


def test_kept_but_unread_mail_is_read_on_the_next_pass_once_each(database_url: str, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, support_duty=f"Duty Desk <{DUTY}>")
    now = datetime.now(UTC)
    long_ago = now - mail_intake.RETRY_AFTER - timedelta(seconds=5)

    def kept(name: str, attempts: int, attempted_at: datetime | None) -> bytes:
        raw = support_mail(f"{name}@elsewhere.example", f"About {name}", "Hello.", now - timedelta(hours=1))
        with session_scope() as session:
            session.add(
                InboundMail(
                    mail_key=mail_intake.mail_key(raw),
                    arrived_at=now - timedelta(minutes=10),
                    envelope_from=f"{name}@elsewhere.example",
                    raw=raw,
                    attempts=attempts,
                    attempted_at=attempted_at,
                )
            )
        return raw

    crashed = kept("crashed", 1, long_ago)  # the process died while reading it
    saved = kept("saved", 0, None)  # kept before this version counted attempts
    reading = kept("reading", 1, now)  # someone is reading it right now: not taken from them
    hopeless = kept("hopeless", mail_intake.MAX_ATTEMPTS, long_ago)  # crashed the reader every time

    done = mail_intake.retry_kept_mail(settings, now=now)
    assert sorted(r.outcome.value for r in done) == ["refused", "unknown-sender", "unknown-sender"]
    for raw in (crashed, saved):
        row = row_of(raw)
        assert row is not None and row.outcome == "unknown-sender" and row.routed_to == f"Duty Desk <{DUTY}>"
    left = row_of(reading)
    assert left is not None and left.outcome == "received" and left.attempts == 1
    # delivered again meanwhile (the SMTP sender's retry, the IMAP reader's next pass): kept, not
    # read a second time beside whoever is at it
    again = mail_intake.receive_mail(reading, envelope_from="reading@elsewhere.example", settings=settings)
    assert again.outcome.value == "received" and again.mail_id == left.id
    left = row_of(reading)
    assert left is not None and left.outcome == "received" and left.attempts == 1
    given_up = row_of(hopeless)
    assert given_up is not None and given_up.outcome == "refused"
    assert f"could not be read in {mail_intake.MAX_ATTEMPTS} attempts" in given_up.reason

    assert mail_intake.retry_kept_mail(settings, now=now + timedelta(seconds=1)) == []  # once each
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 3  # each told once


def test_the_gate_keeper_reads_a_mail_a_crash_left_unread(imap_stack: Any) -> None:
    handle = imap_stack
    with handle.active():
        with session_scope() as session:
            records.save_contract(session, contract=mail_contract())
        sent = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=20)
        raw = support_mail(f"Jana Vogel <{CUSTOMER}>", "Data line flapping", "Since 8:00.", sent)
        with session_scope() as session:  # as the catcher's step 1 left it when the process died
            session.add(
                InboundMail(
                    mail_key=mail_intake.mail_key(raw),
                    arrived_at=sent + timedelta(seconds=30),
                    envelope_from=CUSTOMER,
                    raw=raw,
                    attempts=1,
                    attempted_at=datetime.now(UTC) - mail_intake.RETRY_AFTER - timedelta(seconds=1),
                )
            )
        row = wait_for(
            lambda: (r := row_of(raw)) is not None and r.outcome == "opened" and r, "read by the keeper"
        )
        assert row.attempts == 2
        with session_scope() as session:
            incident = session.get(Incident, row.incident_key)
            assert incident is not None and incident.received_at == sent and incident.channel == "email"


def test_a_server_without_starttls_never_gets_the_password(tmp_path: Path) -> None:
    with DovecotServer(password=PASSWORD, tls=False) as bare:
        given: dict[str, Any] = {"home": tmp_path, "support_imap_password": PASSWORD}
        refused = read_mailbox(Settings(support_imap_url=f"imap://desk@127.0.0.1:{bare.port}/INBOX", **given))
        assert refused.outcome is PassOutcome.REFUSED and "does not offer STARTTLS" in refused.problem
        assert "user=<desk>" not in bare.log()  # no login was tried: the password stayed here
        # imap+plain:// says "no TLS" on purpose, and only to this machine
        plain = read_mailbox(
            Settings(support_imap_url=f"imap+plain://desk@127.0.0.1:{bare.port}/INBOX", **given)
        )
        assert plain.outcome is PassOutcome.READ
        assert "Login: user=<desk>" in bare.log()


def test_a_mailbox_url_with_a_password_or_plain_to_another_host_is_refused(tmp_path: Path) -> None:
    address = mailbox_address("imaps://support%40acme.example@mail.acme.example/INBOX/Support")
    assert (address.user, address.host, address.port, address.folder) == (
        "support@acme.example",
        "mail.acme.example",
        993,
        "INBOX/Support",
    )
    assert mailbox_address("imap://s@mail.acme.example").port == 143
    for url, words in (
        ("imaps://support:hunter2@mail.acme.example/INBOX", "holds a password"),
        ("imap+plain://support@mail.acme.example/INBOX", "only to this machine"),
        ("pop3://support@mail.acme.example/", "must look like imaps://"),
        ("imaps://mail.acme.example/INBOX", "needs the user and the host"),
    ):
        with pytest.raises(MailboxSettingRefused, match=words) as refused:
            mailbox_address(url)
        assert "hunter2" not in str(refused.value)
    # `siteflow up` stops before starting anything, saying what to change
    settings = Settings(
        home=tmp_path,
        support_imap_url="imaps://support:hunter2@mail.acme.example/INBOX",
        smtp_port=18990,
        web_port=18991,
    )
    with pytest.raises(StackError, match="SITEFLOW_SUPPORT_IMAP_PASSWORD_FILE") as stopped:
        Stack(settings, say=lambda m: None).start()
    assert "hunter2" not in str(stopped.value)
    missing = settings.model_copy(update={"support_imap_url": "imaps://support@mail.acme.example/INBOX"})
    with pytest.raises(StackError, match="has no password"):
        Stack(missing, say=lambda m: None).start()
