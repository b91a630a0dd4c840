"""Personal API tokens: how the CLI proves who is acting (`siteflow login`, issue #9).

A token is 32 random bytes shown once, to the user who logged in; the table keeps only its
SHA-256, so a copy of the database acts as nobody. Tokens expire (`token_days`), end when
their owner logs out or the account is disabled, and a password reset ends them too (the
password that made them may be the one that leaked).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

from pydantic import BaseModel, SecretStr
from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from models.staff import ApiToken, StaffUser
from siteflow.approval_links import new_token, token_hash
from siteflow.db import read_scope, session_scope
from siteflow.identity.sessions import SignedIn
from siteflow.settings import get_settings

PREFIX = "sft_"  # recognisable in a leaked paste, so secret scanners can find it
TOUCH_EVERY = timedelta(minutes=1)


class NewToken(BaseModel):
    """A token just issued: its id (for the audit trail and `logout`), the secret (the only copy)."""

    id: str
    token: SecretStr
    expires_at: datetime


def issue_token(session: Session, user_id: str, label: str, now: datetime | None = None) -> NewToken:
    now = now or datetime.now(UTC)
    secret = PREFIX + new_token()
    expires = now + timedelta(days=get_settings().token_days)
    row = ApiToken(
        token_sha256=token_hash(secret),
        user_id=user_id,
        label=label[:120],
        created_at=now,
        expires_at=expires,
    )
    session.add(row)
    session.flush()
    return NewToken(id=row.id, token=SecretStr(secret), expires_at=expires)


def token_user(secret: str | None, now: datetime | None = None) -> SignedIn | None:
    """The user a bearer token acts for, or None (unknown, revoked, expired, disabled)."""
    if not secret or not secret.startswith(PREFIX) or len(secret) > 200:
        return None
    now = now or datetime.now(UTC)
    digest = token_hash(secret)
    with read_scope() as session:
        found = session.execute(
            select(ApiToken, StaffUser)
            .join(StaffUser, StaffUser.id == ApiToken.user_id)
            .where(ApiToken.token_sha256 == digest)
        ).one_or_none()
        if found is None:
            return None
        row, user = found.tuple()
        if row.revoked_at is not None or row.expires_at <= now or user.disabled_at is not None:
            return None
        who = SignedIn.of(user, row.expires_at)
        stale = row.last_used_at is None or row.last_used_at + TOUCH_EVERY < now
    if stale:
        with session_scope() as session:
            session.execute(update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now))
    return who


def revoke_token(session: Session, secret: str, now: datetime | None = None) -> ApiToken | None:
    """End one token (`siteflow logout`); the row if it was live."""
    if not secret.startswith(PREFIX) or len(secret) > 200:
        return None
    row = session.execute(
        select(ApiToken).where(ApiToken.token_sha256 == token_hash(secret))
    ).scalar_one_or_none()
    if row is None or row.revoked_at is not None:
        return None
    row.revoked_at = now or datetime.now(UTC)
    return row


class TokenView(BaseModel):
    """One of a user's tokens as their tokens page lists it (never the secret)."""

    id: str
    label: str
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    def live(self, now: datetime) -> bool:
        return self.revoked_at is None and self.expires_at > now


def tokens_of(user_id: str) -> list[TokenView]:
    """A user's tokens, newest first, the ended ones of the last `token_days` too."""
    shown_since = datetime.now(UTC) - timedelta(days=get_settings().token_days)
    with read_scope() as session:
        rows = session.execute(
            select(ApiToken)
            .where(ApiToken.user_id == user_id, ApiToken.expires_at > shown_since)
            .order_by(ApiToken.created_at.desc())
        ).scalars()
        return [TokenView.model_validate(row, from_attributes=True) for row in rows]


def revoke_own_token(session: Session, user_id: str, token_id: str, now: datetime | None = None) -> bool:
    """End one of the user's own tokens by its id (their tokens page); False if it is not
    theirs or already ended — a user cannot end someone else's token by guessing ids."""
    row = session.get(ApiToken, token_id[:36])
    if row is None or row.user_id != user_id or row.revoked_at is not None:
        return False
    row.revoked_at = now or datetime.now(UTC)
    return True


def revoke_all_tokens(session: Session, user_id: str, now: datetime | None = None) -> int:
    """End every token of a user (disabled or reset); how many were live."""
    result = session.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now or datetime.now(UTC))
    )
    return int(cast(CursorResult[Any], result).rowcount or 0)
