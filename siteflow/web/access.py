"""Who is acting on a web request, and what they may see (COM-6, issue #9).

Every page and JSON view except health and the approval-link pages needs a signed-in user
(the session cookie) or a personal API token (``Authorization: Bearer sft_…``). A JSON view
without either answers 401; a page sends the browser to /signin and back.

What a user sees: office, auditors and admins see every project and window; everyone else
sees the subjects where their email is one of the listed contacts. A customer has no staff
account and sees only the gate behind their own mailed link (`siteflow.web.approvals`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from urllib.parse import quote

from fastapi import HTTPException, Request
from sqlalchemy import select

from models.project import Project
from models.roster import roster_of
from models.upgrade import UpgradeWindow
from siteflow.db import read_scope
from siteflow.identity.api_tokens import token_user
from siteflow.identity.roles import StaffRole
from siteflow.identity.sessions import SignedIn, signed_in
from siteflow.web.csrf import cookie_name

SESSION_COOKIE = "siteflow_session"
SEE_ALL = frozenset({StaffRole.OFFICE, StaffRole.AUDITOR, StaffRole.ADMIN})
AUDIT_EXPORT = frozenset({StaffRole.AUDITOR, StaffRole.OFFICE, StaffRole.PM})


class Via(enum.StrEnum):
    SESSION = "session"  # a browser signed in to the workspace
    TOKEN = "token"  # the CLI with a personal API token


@dataclass(frozen=True)
class Actor:
    user: SignedIn
    via: Via

    @property
    def sees_all(self) -> bool:
        return any(r in SEE_ALL for r in self.user.roles)

    def has(self, roles: frozenset[StaffRole]) -> bool:
        return any(r in roles for r in self.user.roles)


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def actor_of(request: Request) -> Actor | None:
    """The token's user if the request carries one (a bad token is not overridden by a
    cookie), else the session cookie's user, else None."""
    token = bearer(request)
    if token is not None:
        user = token_user(token)
        return Actor(user, Via.TOKEN) if user is not None else None
    user = signed_in(request.cookies.get(cookie_name(SESSION_COOKIE)))
    return Actor(user, Via.SESSION) if user is not None else None


class NotSignedIn(HTTPException):
    def __init__(self) -> None:
        super().__init__(
            status_code=401,
            detail="sign in (the workspace) or send a personal API token (`siteflow login`)",
            headers={"WWW-Authenticate": "Bearer"},
        )


def require_actor(request: Request) -> Actor:
    """FastAPI dependency of every protected JSON view: 401 without a live session or token."""
    actor = actor_of(request)
    if actor is None:
        raise NotSignedIn()
    return actor


def signin_redirect(request: Request) -> str:
    """Where a page sends a browser that is not signed in: /signin, then back here."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"/signin?next={quote(target, safe='')}"


def visible_subjects(actor: Actor) -> set[str] | None:
    """The project codes and window ids this actor may see; None means all of them."""
    if actor.sees_all:
        return None
    email = actor.user.email
    seen: set[str] = set()
    with read_scope() as session:
        subjects = list(session.execute(select(Project.code)).scalars()) + list(
            session.execute(select(UpgradeWindow.id)).scalars()
        )
        for subject in subjects:
            form = roster_of(session, subject)
            if form is not None and form.contact(email) is not None:
                seen.add(subject)
    return seen


def may_see(actor: Actor, subject: str) -> bool:
    if actor.sees_all:
        return True
    with read_scope() as session:
        form = roster_of(session, subject)
        return form is not None and form.contact(actor.user.email) is not None


def forbid_unless_visible(actor: Actor, subject: str) -> None:
    """404, not 403, for a subject the actor may not see: its existence is not theirs to learn."""
    if not may_see(actor, subject):
        raise HTTPException(status_code=404, detail=f"no project or window {subject!r} that you may see")
