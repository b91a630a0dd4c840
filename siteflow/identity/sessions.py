"""Server-side sign-in sessions behind a random cookie.

The cookie holds 32 random bytes; the table holds only their SHA-256, so a copy of the
database signs nobody in. Every request looks the session up, so disabling a user or
resetting their password (which revoke the rows) ends their sessions at once. A session ends
after `session_idle_hours` without use and `session_max_hours` after sign-in in any case.
`last_seen_at` is written at most once a minute, so reading pages does not write each time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

from pydantic import BaseModel, SecretStr
from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.orm import Session

from models.staff import StaffSession, StaffUser
from siteflow.approval_links import new_token, token_hash
from siteflow.db import read_scope, session_scope
from siteflow.identity.roles import StaffRole
from siteflow.settings import get_settings

TOUCH_EVERY = timedelta(minutes=1)
FORGET_AFTER = timedelta(days=30)  # ended sessions are deleted this long after they expired


class NewSession(BaseModel):
    """A session just started: the cookie value (the only copy) and when the cookie expires."""

    token: SecretStr
    expires_at: datetime


class SignedIn(BaseModel):
    """Who a request's session belongs to (`GET /me`)."""

    user_id: str
    name: str
    email: str
    roles: list[StaffRole]
    session_expires_at: datetime

    @classmethod
    def of(cls, user: StaffUser, until: datetime) -> SignedIn:
        """The account as a request's user, its session or token ending `until`."""
        return cls(
            user_id=user.id,
            name=user.name,
            email=user.email,
            roles=[StaffRole(r) for r in user.roles],
            session_expires_at=until,
        )


def start_session(session: Session, user_id: str, now: datetime | None = None) -> NewSession:
    """A fresh session for a user who has just proven who they are (never reuse an old id)."""
    now = now or datetime.now(UTC)
    token = new_token()
    expires = now + timedelta(hours=get_settings().session_max_hours)
    session.add(
        StaffSession(
            id_sha256=token_hash(token), user_id=user_id, created_at=now, last_seen_at=now, expires_at=expires
        )
    )
    session.execute(delete(StaffSession).where(StaffSession.expires_at < now - FORGET_AFTER))
    return NewSession(token=SecretStr(token), expires_at=expires)


def _live(row: StaffSession, user: StaffUser, now: datetime) -> bool:
    idle = timedelta(hours=get_settings().session_idle_hours)
    return (
        row.revoked_at is None
        and user.disabled_at is None
        and row.expires_at > now
        and row.last_seen_at + idle > now
    )


def signed_in(token: str | None, now: datetime | None = None) -> SignedIn | None:
    """The user behind a session cookie, or None (no cookie, unknown, ended, expired, disabled)."""
    if not token or len(token) > 200:
        return None
    now = now or datetime.now(UTC)
    digest = token_hash(token)
    with read_scope() as session:
        found = session.execute(
            select(StaffSession, StaffUser)
            .join(StaffUser, StaffUser.id == StaffSession.user_id)
            .where(StaffSession.id_sha256 == digest)
        ).one_or_none()
        if found is None:
            return None
        row, user = found.tuple()
        if not _live(row, user, now):
            return None
        who = SignedIn.of(user, min(row.expires_at, now + timedelta(hours=get_settings().session_idle_hours)))
        stale = row.last_seen_at + TOUCH_EVERY < now
    if stale:
        with session_scope() as session:
            session.execute(
                update(StaffSession)
                .where(StaffSession.id_sha256 == digest, StaffSession.last_seen_at < now)
                .values(last_seen_at=now)
            )
    return who


def end_session(session: Session, token: str, now: datetime | None = None) -> str | None:
    """Revoke one session (sign-out); the user id it belonged to, or None if it was not live."""
    row = session.get(StaffSession, token_hash(token)) if token and len(token) <= 200 else None
    if row is None or row.revoked_at is not None:
        return None
    row.revoked_at = now or datetime.now(UTC)
    return row.user_id


def end_all_sessions(session: Session, user_id: str, now: datetime | None = None) -> int:
    """Revoke every session of a user (disabled, password reset or set); how many were live."""
    now = now or datetime.now(UTC)
    result = session.execute(
        update(StaffSession)
        .where(StaffSession.user_id == user_id, StaffSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return int(cast(CursorResult[Any], result).rowcount or 0)
