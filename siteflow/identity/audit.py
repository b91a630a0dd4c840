"""What identity changes leave in the hash-chained audit log (stream ``staff``).

Payloads are typed (`StaffAudit`) and hold who and what, never a password, a token or a
session id: the log is read by auditors and exported as JSON and HTML.
"""

from __future__ import annotations

import enum
import getpass
import socket

from pydantic import BaseModel
from sqlalchemy.orm import Session

from siteflow import audit_chain
from siteflow.identity.roles import StaffRole

STREAM = "staff"


class StaffEvent(enum.StrEnum):
    USER_CREATED = "user.created"
    USER_DISABLED = "user.disabled"
    PASSWORD_LINK_SENT = "password.link-sent"
    PASSWORD_RESET = "password.reset"  # a host admin reset it: sessions ended, a link mailed
    PASSWORD_SET = "password.set"  # the user set it through a link
    SIGNED_IN = "user.signed-in"
    SIGNED_OUT = "user.signed-out"
    TOKEN_ISSUED = "token.issued"  # `siteflow login`
    TOKEN_REVOKED = "token.revoked"  # `siteflow logout`
    SSO_LINKED = "sso.linked"  # the first single sign-on linked a provider identity


class StaffAudit(BaseModel):
    """One record's payload: the account it is about and what changed."""

    user_id: str
    email: str
    roles: list[StaffRole] | None = None
    purpose: str | None = None  # of a password link: set or reset
    address: str | None = None  # of a web request
    sessions_ended: int | None = None
    token_id: str | None = None  # a personal API token's id (never the token)
    method: str | None = None  # of a sign-in: "sso" (single sign-on); a password sign-in has none
    sso_subject: str | None = None  # the provider identity ("<issuer> <sub>") an account was linked to


def host_admin() -> str:
    """The actor of a `siteflow users …` command: the host account that ran it."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name in the environment or the password database
        user = "unknown"
    return f"host-admin:{user}@{socket.gethostname()}"


def record(session: Session, event: StaffEvent, actor: str, payload: StaffAudit) -> None:
    """Append inside the caller's transaction, so the record lands with the change it logs."""
    audit_chain.append(
        session, STREAM, event.value, actor, payload.model_dump(mode="json", exclude_none=True)
    )
