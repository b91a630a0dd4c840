"""Read the support mailbox of a real mail server by IMAP (issue #11, ``SITEFLOW_SUPPORT_IMAP_URL``).

With a real mail server the support address is a mailbox there, not the local SMTP catcher.
``siteflow up`` then runs this reader as a service of its own (``mail-reader``, started again
when it exits, :meth:`siteflow.stack.Stack.watch`); it never blocks the gate keeper on a slow
server. Every ``SITEFLOW_SUPPORT_IMAP_POLL_SECONDS`` one pass (:func:`read_mailbox`):

1. logs in (TLS, STARTTLS or — loopback only — plain, :mod:`siteflow.incidents.mailbox_address`)
   and selects the folder;
2. fetches each **unseen** message with ``BODY.PEEK[]`` (fetching does not mark it seen);
3. hands its raw bytes to :func:`siteflow.incidents.mail_intake.receive_mail` — the SMTP
   catcher's path, so the dedup by Message-ID, the Date as received time (INC-4), follow-ups by
   key (COM-2) and unknown senders routed to the duty owner (INC-9) are the same;
4. only once the mail is kept in the database, marks it ``\\Seen``.

So nothing is lost or read twice: a crash before step 4 leaves the message unseen, the next
pass fetches it again, and the intake finds the row its Message-ID already made (one row, one
incident) before the message is marked; a crash inside the intake leaves the row ``received``,
which the gate keeper reads again (:func:`~siteflow.incidents.mail_intake.retry_kept_mail`). A
mail the database cannot take stays unseen for the next pass.

A server that is down or refuses the login is said once per outage — a warning with the reason
and the address, never the password — then retried quietly with a back-off that doubles up to
:data:`BACKOFF_MAX_SECONDS`; the pass that gets through says the outage is over. The mail waits
on the server meanwhile.

stdlib :mod:`imaplib` rather than a PyPI client: the reader is one blocking loop in a process of
its own, so an asyncio client (aioimaplib) buys nothing, and the few commands it needs (LOGIN,
STARTTLS, SELECT, UID SEARCH/FETCH/STORE) are all there, with timeouts and TLS contexts — no
dependency to pin and keep.

People should not read the support mailbox with a mail client that marks messages read:
an unseen message is what the reader takes as new.
"""

from __future__ import annotations

import contextlib
import email.parser
import email.utils
import enum
import imaplib
import logging
import re
import ssl
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict

from siteflow.incidents.mail_intake import MailResult, receive_mail
from siteflow.incidents.mailbox_address import (
    MailboxAddress,
    MailboxSecurity,
    MailboxSettingRefused,
    mailbox_address,
    mailbox_password,
)
from siteflow.settings import Settings

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 30.0
BACKOFF_MAX_SECONDS = 300.0
PER_PASS = 100
"""At most this many mails a pass (the rest the next one), so one pass stays short."""


class PassOutcome(enum.StrEnum):
    READ = "read"  # logged in and looked: every unseen mail kept (or, not kept, left unseen)
    UNREACHABLE = "unreachable"  # no connection, or it was lost: the server is down or away
    REFUSED = "refused"  # the server answers but will not let us read: login, TLS, folder, settings


class ReaderPass(BaseModel):
    """What one pass did."""

    model_config = ConfigDict(frozen=True)

    outcome: PassOutcome
    problem: str = ""
    results: tuple[MailResult, ...] = ()
    held: int = 0
    """Mails the intake could not keep (the database was away): left unseen for the next pass."""


class _Refused(Exception):
    """The server answered, but not as the reader needs; the message says what to do."""


def _tls_context(settings: Settings) -> ssl.SSLContext:
    ca = settings.support_imap_ca_file
    return ssl.create_default_context(cafile=str(ca) if ca is not None else None)


def _connect(address: MailboxAddress, settings: Settings) -> imaplib.IMAP4:
    if address.security is MailboxSecurity.TLS:
        return imaplib.IMAP4_SSL(
            address.host, address.port, ssl_context=_tls_context(settings), timeout=TIMEOUT_SECONDS
        )
    client = imaplib.IMAP4(address.host, address.port, timeout=TIMEOUT_SECONDS)
    if address.security is MailboxSecurity.STARTTLS:
        if "STARTTLS" not in client.capabilities:
            client.shutdown()
            raise _Refused(
                f"{address.host}:{address.port} does not offer STARTTLS; use imaps:// (TLS) — the password "
                "is never sent in clear"
            )
        try:
            client.starttls(ssl_context=_tls_context(settings))
        except BaseException:
            client.shutdown()
            raise
    return client


def _text(data: object) -> str:
    """A server's answer as words (imaplib hands back bytes in lists)."""
    if isinstance(data, list) and data:
        data = data[-1]
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")[:200]
    return str(data)[:200]


def _said(exc: Exception) -> str:
    """An imaplib error in the server's words (it carries them as bytes)."""
    return _text(exc.args[0]) if exc.args and isinstance(exc.args[0], bytes) else _text(str(exc))


def _quoted(folder: str) -> str:
    return f'"{folder}"'  # mailbox_address lets no quote or backslash through


def _envelope_from(raw: bytes) -> str:
    """Return-Path (what the server was given as the sender), else the From address."""
    headers = email.parser.BytesHeaderParser().parsebytes(raw)
    path = str(headers.get("Return-Path", "")).strip().strip("<>")
    return path or email.utils.parseaddr(str(headers.get("From", "")))[1]


INTERNALDATE = re.compile(rb'INTERNALDATE "[^"]+"')


def _fetched(data: list[object]) -> tuple[bytes, datetime | None] | None:
    """The message's bytes and when the server received it, from a UID FETCH answer."""
    for item in data:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], bytes):
            head = item[0] if isinstance(item[0], bytes) else b""
            arrived = None
            found = INTERNALDATE.search(head)
            if found:
                parsed = imaplib.Internaldate2tuple(found.group(0))
                arrived = datetime.fromtimestamp(time.mktime(parsed), UTC) if parsed else None
            return item[1], arrived
    return None


def _read_folder(client: imaplib.IMAP4, address: MailboxAddress, settings: Settings) -> ReaderPass:
    typ, data = client.select(_quoted(address.folder))
    if typ != "OK":
        raise _Refused(f"folder {address.folder} cannot be opened: {_text(data)}")
    typ, data = client.uid("SEARCH", "UNSEEN")
    if typ != "OK":
        raise _Refused(f"searching {address.folder} for unseen mail failed: {_text(data)}")
    uids = (data[0] or b"").split()[:PER_PASS] if data and isinstance(data[0], bytes) else []
    results: list[MailResult] = []
    held = 0
    for uid in uids:
        typ, fetched = client.uid("FETCH", uid.decode(), "(INTERNALDATE BODY.PEEK[])")
        message = _fetched(list(fetched)) if typ == "OK" else None
        if message is None:  # expunged meanwhile
            continue
        raw, arrived = message
        try:
            result = receive_mail(
                raw, envelope_from=_envelope_from(raw), settings=settings, arrived_at=arrived
            )
        except Exception:  # not kept (the database is away): unseen, the next pass takes it
            log.exception("support mail (uid %s) could not be kept; it stays unseen for the next pass", uid)
            held += 1
            continue
        client.uid("STORE", uid.decode(), "+FLAGS.SILENT", r"(\Seen)")  # only now: it is ours
        results.append(result)
    return ReaderPass(outcome=PassOutcome.READ, results=tuple(results), held=held)


def read_mailbox(settings: Settings) -> ReaderPass:
    """One pass over the support mailbox (see the module's docstring); never raises for a
    server's trouble — the outcome says it, for :class:`OutageLog`."""
    try:
        address = mailbox_address(settings.support_imap_url or "")
        password = mailbox_password(settings)
    except MailboxSettingRefused as exc:
        return ReaderPass(outcome=PassOutcome.REFUSED, problem=str(exc))
    where = address.shown()
    try:
        client = _connect(address, settings)
    except ssl.SSLError as exc:  # before OSError: a certificate or TLS refusal is not an outage
        return ReaderPass(outcome=PassOutcome.REFUSED, problem=f"TLS with {where} failed: {exc}")
    except _Refused as exc:
        return ReaderPass(outcome=PassOutcome.REFUSED, problem=str(exc))
    except imaplib.IMAP4.error as exc:  # a greeting or STARTTLS answer that is not OK
        return ReaderPass(outcome=PassOutcome.REFUSED, problem=f"{where} answered: {_said(exc)}")
    except OSError as exc:  # refused, unreachable, timed out, name unknown
        return ReaderPass(outcome=PassOutcome.UNREACHABLE, problem=f"{where} cannot be reached: {exc}")
    try:
        try:
            client.login(address.user, password)
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error as exc:  # the server's words; imaplib never puts the password in
            return ReaderPass(
                outcome=PassOutcome.REFUSED,
                problem=f"{where} refused the login as {address.user}: {_said(exc)}; check the password in "
                "SITEFLOW_SUPPORT_IMAP_PASSWORD_FILE",
            )
        return _read_folder(client, address, settings)
    except _Refused as exc:
        return ReaderPass(outcome=PassOutcome.REFUSED, problem=f"{where}: {exc}")
    except (imaplib.IMAP4.abort, OSError) as exc:  # lost on the way: unseen mail is taken next time
        return ReaderPass(
            outcome=PassOutcome.UNREACHABLE, problem=f"{where}: the connection was lost ({exc})"
        )
    finally:
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            client.logout()


@dataclass
class OutageLog:
    """Says an outage once and spaces the retries: the first failed pass is a warning with its
    reason, the same trouble again only a debug line, a different trouble a new warning, and
    the first pass that gets through says how long it was away. :meth:`after` is how long to
    wait before the next pass: the poll interval, doubled after each failure up to
    :data:`BACKOFF_MAX_SECONDS`."""

    poll_seconds: float
    failures: int = 0
    trouble: PassOutcome | None = None
    since: float = 0.0

    def after(self, result: ReaderPass, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        if result.outcome is PassOutcome.READ:
            if self.failures:
                log.warning(
                    "the support mailbox is read again after %d failed attempt(s) over %.0fs",
                    self.failures,
                    now - self.since,
                )
            self.failures, self.trouble = 0, None
            return self.poll_seconds
        if self.trouble is not result.outcome:
            log.warning(
                "the support mailbox cannot be read (%s): %s; retrying", result.outcome, result.problem
            )
            if self.trouble is None:
                self.since = now
            self.trouble = result.outcome
        else:
            log.debug("the support mailbox still cannot be read: %s", result.problem)
        self.failures += 1
        backoff: float = self.poll_seconds * 2.0**self.failures
        return min(backoff, max(BACKOFF_MAX_SECONDS, self.poll_seconds))


def main() -> None:
    """The ``mail-reader`` service `siteflow up` starts when ``SITEFLOW_SUPPORT_IMAP_URL`` is set."""
    from siteflow.prefect_env import apply_prefect_environment
    from siteflow.settings import get_settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    apply_prefect_environment()  # an opened incident starts its run on Prefect
    settings = get_settings()
    try:
        address = mailbox_address(settings.support_imap_url or "")
    except MailboxSettingRefused as exc:
        raise SystemExit(f"the support mailbox cannot be read: {exc}") from None
    log.info("reading the support mailbox %s every %gs", address.shown(), settings.support_imap_poll_seconds)
    outages = OutageLog(settings.support_imap_poll_seconds)
    while True:
        time.sleep(outages.after(read_mailbox(get_settings())))


if __name__ == "__main__":
    main()
