"""Where the support mailbox is and how to log in to it (``SITEFLOW_SUPPORT_IMAP_*``, issue #11).

The URL names the server, the user and the folder; the password never rides in it (a URL is
printed, logged and pasted into tickets), it comes from ``SITEFLOW_SUPPORT_IMAP_PASSWORD_FILE``
(read on every pass, so a changed password needs no restart) or ``SITEFLOW_SUPPORT_IMAP_PASSWORD``.
Three ways to talk to the server, each said by the URL's scheme:

- ``imaps://`` — TLS from the first byte (port 993 by default): what a real mail server offers.
- ``imap://`` — STARTTLS on port 143; a server that does not offer it is refused, never used
  in clear.
- ``imap+plain://`` — no TLS at all, only to a loopback address (a test server on this
  machine): the password must not cross a network in clear.
"""

from __future__ import annotations

import enum
import ipaddress
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict

from siteflow.settings import Settings


class MailboxSecurity(enum.StrEnum):
    TLS = "imaps"
    STARTTLS = "imap"
    PLAIN = "imap+plain"


DEFAULT_PORTS = {MailboxSecurity.TLS: 993, MailboxSecurity.STARTTLS: 143, MailboxSecurity.PLAIN: 143}


class MailboxSettingRefused(ValueError):
    """The support mailbox's settings cannot be used; the message says what to change."""


class MailboxAddress(BaseModel):
    """The support mailbox, without its password."""

    model_config = ConfigDict(frozen=True)

    security: MailboxSecurity
    host: str
    port: int
    user: str
    folder: str

    def shown(self) -> str:
        """The address as logs and `siteflow up` print it (there is no password in it to hide)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.security.value}://{self.user}@{host}:{self.port}/{self.folder}"


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def mailbox_address(url: str) -> MailboxAddress:
    """The mailbox ``SITEFLOW_SUPPORT_IMAP_URL`` names; refused with what to write instead."""
    parts = urlsplit(url.strip())
    try:
        security = MailboxSecurity(parts.scheme.lower())
        port = parts.port
    except ValueError:
        raise MailboxSettingRefused(
            "SITEFLOW_SUPPORT_IMAP_URL must look like imaps://user@host/INBOX (TLS), "
            "imap://user@host/INBOX (STARTTLS) or imap+plain://user@127.0.0.1:PORT/INBOX (loopback, "
            "no TLS)"
        ) from None
    if parts.password is not None:
        raise MailboxSettingRefused(
            "SITEFLOW_SUPPORT_IMAP_URL holds a password: remove it from the URL and put it in the file "
            "SITEFLOW_SUPPORT_IMAP_PASSWORD_FILE names (mode 0600), or in SITEFLOW_SUPPORT_IMAP_PASSWORD"
        )
    if not parts.hostname or not parts.username:
        raise MailboxSettingRefused(
            "SITEFLOW_SUPPORT_IMAP_URL needs the user and the host: imaps://user@host/INBOX"
        )
    if security is MailboxSecurity.PLAIN and not _loopback(parts.hostname):
        raise MailboxSettingRefused(
            f"imap+plain:// sends the password in clear: only to this machine (127.0.0.1), not to "
            f"{parts.hostname}; use imaps:// or imap:// (STARTTLS)"
        )
    folder = unquote(parts.path.lstrip("/")) or "INBOX"
    if not folder.isascii() or any(c in folder for c in '\r\n"\\*%'):
        raise MailboxSettingRefused(
            "the folder in SITEFLOW_SUPPORT_IMAP_URL must be a plain ASCII name such as INBOX or "
            "INBOX/Support"
        )
    return MailboxAddress(
        security=security,
        host=parts.hostname,
        port=port or DEFAULT_PORTS[security],
        user=unquote(parts.username),
        folder=folder,
    )


def mailbox_password(settings: Settings) -> str:
    """The password, from its file (read now) or its setting; refused when neither gives one."""
    if settings.support_imap_password_file is not None:
        try:
            text = settings.support_imap_password_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise MailboxSettingRefused(
                f"SITEFLOW_SUPPORT_IMAP_PASSWORD_FILE {settings.support_imap_password_file} cannot be "
                f"read ({exc.strerror}): create it with the mailbox's password"
            ) from None
        password = text.rstrip("\r\n")
    elif settings.support_imap_password is not None:
        password = settings.support_imap_password.get_secret_value()
    else:
        password = ""
    if not password:
        raise MailboxSettingRefused(
            "the support mailbox has no password: put it in a file and name it in "
            "SITEFLOW_SUPPORT_IMAP_PASSWORD_FILE (or set SITEFLOW_SUPPORT_IMAP_PASSWORD)"
        )
    return password
