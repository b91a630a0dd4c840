"""Staff accounts: add, list, disable, reset (the `siteflow users` commands).

These work on the database directly, so only someone on the host with access to siteflow's
database can run them: that is how the very first account (an admin) comes to exist, and
there is no web page that creates accounts. One email is one account (emails are compared
lower-cased); a second `add` with the same email is refused, never merged.

A new account without a password gets a mailed single-use link to set one. `reset` ends the
account's sessions, forgets its password (the old one stops working at once) and mails a
link to set a new one; `disable` ends its sessions and every link, and it cannot sign in.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime

from pydantic import BaseModel, Field, field_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.project_input import EMAIL_RE
from models.staff import LinkPurpose, StaffUser
from siteflow.db import read_scope, session_scope
from siteflow.identity.api_tokens import revoke_all_tokens
from siteflow.identity.audit import StaffAudit, StaffEvent, record
from siteflow.identity.password_links import issue_link, supersede_links
from siteflow.identity.passwords import hash_password
from siteflow.identity.roles import StaffRole
from siteflow.identity.sessions import end_all_sessions


class IdentityError(Exception):
    """A refused account change; the message says why and what to do."""


class DuplicateEmail(IdentityError):
    pass


class UnknownUser(IdentityError):
    pass


class AccountDisabled(IdentityError):
    pass


def normalize_email(email: str) -> str:
    return email.strip().lower()


class NewUser(BaseModel):
    """A staff account to create (the CLI's options, checked)."""

    name: str = Field(min_length=1, max_length=200)
    email: str = Field(max_length=320)
    roles: list[StaffRole] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("a name is needed")
        return value

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        value = normalize_email(value)
        if not EMAIL_RE.match(value):
            raise ValueError(f"{value!r} is not an email address")
        return value

    @field_validator("roles")
    @classmethod
    def _roles(cls, value: list[StaffRole]) -> list[StaffRole]:
        return list(dict.fromkeys(value))  # each once, in the order given


class UserStatus(enum.StrEnum):
    ACTIVE = "active"
    INVITED = "invited"  # no password yet: the set-password link has not been used
    DISABLED = "disabled"


class StaffUserView(BaseModel):
    """An account as the CLI and JSON show it (never its password hash)."""

    id: str
    name: str
    email: str
    roles: list[StaffRole]
    status: UserStatus
    created_at: datetime
    password_changed_at: datetime | None
    disabled_at: datetime | None

    @classmethod
    def of(cls, user: StaffUser) -> StaffUserView:
        status = (
            UserStatus.DISABLED
            if user.disabled_at is not None
            else UserStatus.INVITED
            if user.password_hash is None
            else UserStatus.ACTIVE
        )
        return cls(
            id=user.id,
            name=user.name,
            email=user.email,
            roles=[StaffRole(r) for r in user.roles],
            status=status,
            created_at=user.created_at,
            password_changed_at=user.password_changed_at,
            disabled_at=user.disabled_at,
        )


class AccountChange(BaseModel):
    """What a command did: the account after it, and what followed from it."""

    user: StaffUserView
    link_mailed: bool = False
    sessions_ended: int = 0
    unchanged: bool = False  # e.g. disabling an account that already was


def _duplicate(email: str, existing_id: str | None) -> DuplicateEmail:
    which = f" (id {existing_id})" if existing_id else ""
    return DuplicateEmail(
        f"a staff account for {email} already exists{which}; one email is one account. "
        f"`siteflow users list` shows it; `siteflow users reset {email}` mails its owner a new password link"
    )


def add_user(new: NewUser, password: str | None, actor: str) -> AccountChange:
    """Create an account. With a password it can sign in at once; without, a single-use link to
    set one is mailed (through the outbox). Raises DuplicateEmail, WeakPassword."""
    password_hash = hash_password(password) if password is not None else None
    now = datetime.now(UTC)
    try:
        with session_scope() as session:
            existing = _by_email(session, new.email)
            if existing is not None:
                raise _duplicate(new.email, existing.id)
            user = StaffUser(
                name=new.name,
                email=new.email,
                roles=[r.value for r in new.roles],
                password_hash=password_hash,
                created_at=now,
                password_changed_at=now if password_hash else None,
            )
            session.add(user)
            session.flush()
            record(
                session,
                StaffEvent.USER_CREATED,
                actor,
                StaffAudit(user_id=user.id, email=user.email, roles=new.roles),
            )
            if password_hash is None:
                issue_link(session, user, LinkPurpose.SET, actor)
            return AccountChange(user=StaffUserView.of(user), link_mailed=password_hash is None)
    except IntegrityError:  # the same email added at the same moment by another command
        raise _duplicate(new.email, None) from None


def _by_email(session: Session, email: str) -> StaffUser | None:
    return session.execute(
        select(StaffUser).where(StaffUser.email == normalize_email(email))
    ).scalar_one_or_none()


def _existing(session: Session, email: str) -> StaffUser:
    user = _by_email(session, email)
    if user is None:
        raise UnknownUser(f"no staff account for {normalize_email(email)}; `siteflow users list` shows them")
    return user


def list_users() -> list[StaffUserView]:
    with read_scope() as session:
        users = session.execute(select(StaffUser).order_by(StaffUser.created_at, StaffUser.email)).scalars()
        return [StaffUserView.of(u) for u in users]


def disable_user(email: str, actor: str) -> AccountChange:
    """The account can no longer sign in; its sessions, tokens and links end now (the count
    reported as sessions ended includes its API tokens). Raises UnknownUser."""
    now = datetime.now(UTC)
    with session_scope() as session:
        user = _existing(session, email)
        if user.disabled_at is not None:
            return AccountChange(user=StaffUserView.of(user), unchanged=True)
        user.disabled_at = now
        ended = end_all_sessions(session, user.id, now) + revoke_all_tokens(session, user.id, now)
        supersede_links(session, user.id)
        record(
            session,
            StaffEvent.USER_DISABLED,
            actor,
            StaffAudit(user_id=user.id, email=user.email, sessions_ended=ended),
        )
        return AccountChange(user=StaffUserView.of(user), sessions_ended=ended)


def reset_user(email: str, actor: str) -> AccountChange:
    """End the account's sessions and API tokens, forget its password and its single sign-on
    link (the next SSO sign-in links afresh, by verified email), and mail a link to set a new
    password.
    Raises UnknownUser, AccountDisabled."""
    now = datetime.now(UTC)
    with session_scope() as session:
        user = _existing(session, email)
        if user.disabled_at is not None:
            raise AccountDisabled(f"the staff account for {user.email} is disabled; it cannot be reset")
        user.password_hash = None
        user.password_changed_at = now
        user.sso_subject = None
        ended = end_all_sessions(session, user.id, now) + revoke_all_tokens(session, user.id, now)
        record(
            session,
            StaffEvent.PASSWORD_RESET,
            actor,
            StaffAudit(user_id=user.id, email=user.email, sessions_ended=ended),
        )
        issue_link(session, user, LinkPurpose.RESET, actor)
        return AccountChange(user=StaffUserView.of(user), link_mailed=True, sessions_ended=ended)
