"""Signing in and out: the throttle, the password check, a fresh session, the audit record.

A wrong email, a wrong password, a disabled account and one whose password is not set yet
all get the same answer (WRONG) after the same work (one argon2 verification), so the
sign-in page tells nobody which emails have accounts.
"""

from __future__ import annotations

import enum
import logging
from datetime import UTC, datetime

from pydantic import BaseModel
from sqlalchemy import select

from models.staff import StaffUser
from siteflow.db import read_scope, session_scope
from siteflow.identity.api_tokens import NewToken, issue_token
from siteflow.identity.audit import StaffAudit, StaffEvent, record
from siteflow.identity.passwords import needs_rehash, rehash, verify_password
from siteflow.identity.sessions import NewSession, end_session, start_session
from siteflow.identity.signin_throttle import Refused, admit, settle_success
from siteflow.identity.users import normalize_email

log = logging.getLogger(__name__)


class SigninResult(enum.StrEnum):
    SIGNED_IN = "signed-in"
    WRONG = "wrong"  # wrong email or password (or an account that cannot sign in)
    THROTTLED = "throttled"


class SigninOutcome(BaseModel):
    result: SigninResult
    session: NewSession | None = None
    token: NewToken | None = None  # `siteflow login`: a personal API token instead of a session
    retry_after_seconds: int | None = None


def check_password(email: str, password: str, address: str) -> StaffUser | SigninOutcome:
    """The account whose password this is, or the outcome to answer (throttled or wrong).

    Shared by the sign-in page and `siteflow login`, so both are throttled alike."""
    email = normalize_email(email)[:320]
    admission = admit(email, address)
    if isinstance(admission, Refused):
        log.warning("sign-in for %s from %s refused: too many failures (%s)", email, address, admission.scope)
        return SigninOutcome(result=SigninResult.THROTTLED, retry_after_seconds=admission.retry_after_seconds)
    with read_scope() as session:
        user = session.execute(select(StaffUser).where(StaffUser.email == email)).scalar_one_or_none()
    stored = user.password_hash if user is not None and user.disabled_at is None else None
    if not verify_password(stored, password) or user is None:
        log.info("sign-in for %s from %s failed", email, address)
        return SigninOutcome(result=SigninResult.WRONG)
    settle_success(admission)
    return user


def token_sign_in(email: str, password: str, address: str, label: str) -> SigninOutcome:
    """`siteflow login`: the password proves the user, who gets a personal API token."""
    user = check_password(email, password, address)
    if isinstance(user, SigninOutcome):
        return user
    return SigninOutcome(
        result=SigninResult.SIGNED_IN, token=grant_token(user.id, user.email, label, address)
    )


def grant_token(user_id: str, email: str, label: str, address: str) -> NewToken:
    """A personal token for a user already proven (by password, or a signed-in session on the
    tokens page), recorded in the staff trail with the token's id — never the token."""
    with session_scope() as session:
        new = issue_token(session, user_id, label)
        record(
            session,
            StaffEvent.TOKEN_ISSUED,
            email,
            StaffAudit(user_id=user_id, email=email, address=address, token_id=new.id),
        )
    return new


def sign_in(email: str, password: str, address: str) -> SigninOutcome:
    user = check_password(email, password, address)
    if isinstance(user, SigninOutcome):
        return user
    now = datetime.now(UTC)
    with session_scope() as session:
        new = start_session(session, user.id, now)
        if user.password_hash and needs_rehash(user.password_hash):  # parameters raised since it was made
            fresh = session.get(StaffUser, user.id)
            if fresh is not None:
                fresh.password_hash = rehash(password)
        record(
            session,
            StaffEvent.SIGNED_IN,
            user.email,
            StaffAudit(user_id=user.id, email=user.email, address=address),
        )
    return SigninOutcome(result=SigninResult.SIGNED_IN, session=new)


def sign_out(token: str, address: str) -> None:
    """End this browser's session (other sessions of the same user go on)."""
    with session_scope() as session:
        user_id = end_session(session, token)
        user = session.get(StaffUser, user_id) if user_id else None
        if user is not None:
            record(
                session,
                StaffEvent.SIGNED_OUT,
                user.email,
                StaffAudit(user_id=user.id, email=user.email, address=address),
            )
