"""Staff accounts, their sign-in sessions, password links and failed sign-in counts.

Nothing secret is stored as is: passwords as argon2id hashes, session ids and password-link
tokens as their SHA-256 (the cookie or the mailed link is the only copy of the secret).
Emails are stored lower-cased, so one person has one account whatever the case they type.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, new_id, utcnow
from siteflow.identity.roles import StaffRole

__all__ = [
    "ApiToken",
    "LinkPurpose",
    "PasswordLink",
    "SigninFailureCount",
    "StaffRole",
    "StaffSession",
    "StaffUser",
]


class StaffUser(Base):
    __tablename__ = "staff_users"
    __table_args__ = (CheckConstraint("email = lower(email)", name="email_lowercase"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320), unique=True)
    roles: Mapped[list[str]] = mapped_column(JSON)  # StaffRole values
    password_hash: Mapped[str | None] = mapped_column(String(200))  # None until set through a link
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Single sign-on: "<issuer> <sub>" of the provider identity linked at the first SSO sign-in.
    # Later sign-ins must come from that identity, so an email re-used at the provider for
    # someone else does not reach this account.
    sso_subject: Mapped[str | None] = mapped_column(String(700), unique=True)


class StaffSession(Base):
    """One signed-in browser. Kept on the server so that disabling a user or resetting their
    password ends every session at once, whatever cookies are still out there."""

    __tablename__ = "staff_sessions"

    id_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("staff_users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())  # created_at + the longest life
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class LinkPurpose(enum.StrEnum):
    SET = "set"  # a new account without a password
    RESET = "reset"  # `siteflow users reset`


class PasswordLink(Base):
    """A mailed single-use link that sets a password. `used_at` is also set on links that a
    newer link for the same user replaced, so only the newest one works."""

    __tablename__ = "password_links"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    key_id: Mapped[str | None] = mapped_column(String(40))  # the link key its token is derived from
    user_id: Mapped[str] = mapped_column(ForeignKey("staff_users.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(16))  # LinkPurpose
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SigninFailureCount(Base):
    """Failed sign-ins per throttle key and minute, shared by every web process.

    `key_sha256` hashes the scope's key (an email and an address, or an address), so the
    primary key has a fixed width whatever the email's length.
    """

    __tablename__ = "signin_failures"

    scope: Mapped[str] = mapped_column(String(16), primary_key=True)  # ThrottleScope
    key_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    minute: Mapped[int] = mapped_column(Integer, primary_key=True, index=True)  # epoch seconds // 60
    count: Mapped[int] = mapped_column(Integer, default=0)


class ApiToken(Base):
    """A personal API token (`siteflow login`): the CLI acts as its owner through the web API.

    Only the SHA-256 of the token is kept. A token expires (`token_days`), can be revoked by
    its owner (`siteflow logout`) or by disabling the account, and is never shown again.
    """

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("staff_users.id"), index=True)
    label: Mapped[str] = mapped_column(String(120), default="")  # e.g. the host it was made on
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
