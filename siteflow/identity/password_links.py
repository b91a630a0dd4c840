"""Single-use mailed links that set a password: for a new account, and after `users reset`.

The token is never stored: it is derived from the link's id under the current link key
(:mod:`siteflow.link_keys`), the link row keeps its SHA-256 (for lookups) and which key, and the
outbox row names only the link; the relay derives the token again when it renders the mail (as
for approval links). A link works once, until it expires (`reset_link_minutes`,
`invite_link_hours` for a new account), and only while it is its user's newest link. Using it
sets the password and ends every session of that user.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from pydantic import BaseModel
from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from models.base import new_id
from models.outbox import LinkKind, OutboxMessage
from models.staff import LinkPurpose, PasswordLink, StaffUser
from siteflow import link_keys
from siteflow.approval_links import token_hash
from siteflow.db import read_scope, session_scope
from siteflow.identity.audit import STREAM, StaffAudit, StaffEvent, record
from siteflow.identity.passwords import check_rule, hash_password
from siteflow.identity.sessions import end_all_sessions
from siteflow.settings import get_settings

PLACEHOLDER = "{password_link}"  # replaced by the relay with the link, derived for the row's link_id


def link_url(token: str) -> str:
    return f"{get_settings().resolved_public_url}/reset/{token}"


def lifetime(purpose: LinkPurpose) -> timedelta:
    s = get_settings()
    return (
        timedelta(hours=s.invite_link_hours)
        if purpose is LinkPurpose.SET
        else timedelta(minutes=s.reset_link_minutes)
    )


def _say(td: timedelta) -> tuple[str, str]:
    minutes = int(td.total_seconds() // 60)
    if minutes % 60 == 0:
        return f"{minutes // 60} 小时", f"{minutes // 60} hour{'s' if minutes != 60 else ''}"
    return f"{minutes} 分钟", f"{minutes} minutes"


def mail_text(name: str, purpose: LinkPurpose) -> tuple[str, str]:
    """Subject and body of the mail; the body carries `PLACEHOLDER` where the link goes."""
    zh, en = _say(lifetime(purpose))
    public = get_settings().resolved_public_url
    if purpose is LinkPurpose.SET:
        title = "siteflow 设置密码 / Set your siteflow password"
        ask_zh, ask_en = (
            "已为您开通 siteflow 账号，请设置密码",
            "A siteflow account was made for you; set its password",
        )
    else:
        title = "siteflow 重设密码 / Reset your siteflow password"
        ask_zh, ask_en = (
            "管理员重设了您的 siteflow 密码，请设置新密码",
            "An administrator reset your siteflow password; set a new one",
        )
    body = (
        f"{name}，您好 / Hello {name},\n\n"
        f"{ask_zh}（链接 {zh} 内有效，仅可使用一次）：\n"
        f"{ask_en} (the link works once, within {en}):\n  {PLACEHOLDER}\n\n"
        f"登录 / Sign in: {public}/signin\n\n"
        "如非预期，请忽略此邮件并告知管理员。 / If you did not expect this mail, ignore it and tell "
        "your administrator."
    )
    return title, body


def issue_link(session: Session, user: StaffUser, purpose: LinkPurpose, actor: str) -> None:
    """Replace the user's earlier links with a new one and queue the mail that carries it."""
    now = datetime.now(UTC)
    session.execute(
        update(PasswordLink)
        .where(PasswordLink.user_id == user.id, PasswordLink.used_at.is_(None))
        .values(used_at=now)
    )
    key = link_keys.current_key()
    link_id = new_id()
    link = PasswordLink(
        id=link_id,
        token_sha256=token_hash(key.token(LinkKind.PASSWORD, link_id)),
        key_id=key.key_id,
        user_id=user.id,
        purpose=purpose.value,
        created_at=now,
        expires_at=now + lifetime(purpose),
    )
    session.add(link)
    session.flush()
    title, body = mail_text(user.name, purpose)
    session.add(
        OutboxMessage(
            dedup_key=f"password-link:{link.id}",
            subject_ref=STREAM,
            recipient=f"{user.name} <{user.email}>",
            title=title,
            body_text=body,
            link_kind=LinkKind.PASSWORD.value,
            link_id=link_id,
        )
    )
    record(
        session,
        StaffEvent.PASSWORD_LINK_SENT,
        actor,
        StaffAudit(user_id=user.id, email=user.email, purpose=purpose.value),
    )


def supersede_links(session: Session, user_id: str) -> None:
    """No earlier link works any more (the account was disabled)."""
    session.execute(
        update(PasswordLink)
        .where(PasswordLink.user_id == user_id, PasswordLink.used_at.is_(None))
        .values(used_at=datetime.now(UTC))
    )


class LinkState(enum.StrEnum):
    VALID = "valid"
    USED = "used"  # used, or replaced by a newer link
    EXPIRED = "expired"
    UNKNOWN = "unknown"  # never issued (forged, altered, cut short)


class LinkView(BaseModel):
    """What a password-link page may show."""

    state: LinkState
    name: str | None = None
    email: str | None = None
    purpose: LinkPurpose | None = None


def _find(session: Session, token: str) -> tuple[PasswordLink, StaffUser] | None:
    if not token or len(token) > 200:
        return None
    found = session.execute(
        select(PasswordLink, StaffUser)
        .join(StaffUser, StaffUser.id == PasswordLink.user_id)
        .where(PasswordLink.token_sha256 == token_hash(token))
    ).one_or_none()
    return None if found is None else found.tuple()


def _state(link: PasswordLink, user: StaffUser, now: datetime) -> LinkState:
    if link.used_at is not None:
        return LinkState.USED
    if link.expires_at <= now or user.disabled_at is not None:
        return LinkState.EXPIRED
    return LinkState.VALID


def look_up(token: str) -> LinkView:
    with read_scope() as session:
        found = _find(session, token)
        if found is None:
            return LinkView(state=LinkState.UNKNOWN)
        link, user = found
        return LinkView(
            state=_state(link, user, datetime.now(UTC)),
            name=user.name,
            email=user.email,
            purpose=LinkPurpose(link.purpose),
        )


def use_link(token: str, new_password: str, address: str | None = None) -> LinkView:
    """Set the password through a link, once. Raises WeakPassword (the link stays usable);
    otherwise the view's state says whether it worked (VALID) or why not."""
    check_rule(new_password)
    password_hash = hash_password(new_password)  # before the transaction: hashing takes a while
    now = datetime.now(UTC)
    with session_scope() as session:
        found = _find(session, token)
        if found is None:
            return LinkView(state=LinkState.UNKNOWN)
        link, user = found
        view = LinkView(
            state=_state(link, user, now), name=user.name, email=user.email, purpose=LinkPurpose(link.purpose)
        )
        if view.state is not LinkState.VALID:
            return view
        claimed = session.execute(
            update(PasswordLink)
            .where(PasswordLink.id == link.id, PasswordLink.used_at.is_(None))
            .values(used_at=now)
        )
        if not cast(CursorResult[Any], claimed).rowcount:  # another request used it first
            return view.model_copy(update={"state": LinkState.USED})
        user.password_hash = password_hash
        user.password_changed_at = now
        ended = end_all_sessions(session, user.id, now)
        record(
            session,
            StaffEvent.PASSWORD_SET,
            user.email,
            StaffAudit(
                user_id=user.id, email=user.email, purpose=link.purpose, address=address, sessions_ended=ended
            ),
        )
    return view
