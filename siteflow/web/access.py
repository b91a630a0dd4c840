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
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from starlette.routing import compile_path

from models.project import Project
from models.roster import roster_of
from models.upgrade import UpgradeWindow
from siteflow.db import read_scope
from siteflow.identity.api_tokens import token_user
from siteflow.identity.roles import StaffRole
from siteflow.identity.sessions import SignedIn, signed_in
from siteflow.web.csrf import cookie_name
from siteflow.web.pages import HEADERS

SESSION_COOKIE = "siteflow_session"
SEE_ALL = frozenset({StaffRole.OFFICE, StaffRole.AUDITOR, StaffRole.ADMIN})
EXPORT_ANY = frozenset({StaffRole.AUDITOR, StaffRole.OFFICE})  # the pm role: its own subjects only


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
    cookie), else the session cookie's user, else None.

    Looked up once per request (the guard and the view both ask), kept on ``request.state``.
    """
    if not hasattr(request.state, "actor"):
        request.state.actor = _look_up(request)
    found: Actor | None = request.state.actor
    return found


def session_actor(request: Request) -> Actor | None:
    """The browser session's user only: pages and their forms act as the signed-in person
    (door web, proof session); a token acts through the API, never through these forms."""
    actor = actor_of(request)
    return actor if actor is not None and actor.via is Via.SESSION else None


def _look_up(request: Request) -> Actor | None:
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


class SignInFirst(Exception):
    """A page asked for by a browser that is not signed in: answered with a redirect to
    /signin that brings it back (the app's exception handler turns it into a 303)."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


def require_page_actor(request: Request) -> Actor:
    """FastAPI dependency of every protected page: the actor, or off to /signin and back."""
    actor = actor_of(request)
    if actor is None:
        raise SignInFirst(signin_redirect(request))
    return actor


# The only routes anyone may reach without a session or token (COM-6), and why. Every other
# route of the app is guarded by :func:`guard`; tests/test_access_web.py keeps its own copy of
# this list, so opening a route is a change made twice, on purpose.
OPEN_ROUTES: dict[str, str] = {
    "/healthz": "the stack's and a load balancer's health check; says only ok",
    "/a/{token}": "an approval link: its single-use token, mailed to one person, is the credential",
    "/signin": "where credentials are given",
    "/signin/sso": "sends the browser to the single sign-on provider (nothing to read here)",
    "/signin/sso/callback": "the provider's answer: it signs in only with the pending-attempt cookie "
    "of the browser that started",
    "/signout": "ends this browser's session, if any (CSRF-checked)",
    "/reset/{token}": "a password link: its single-use token is the credential",
    "/me": "answers 401 itself when nobody is signed in (who am I, for the sign-in page)",
    "/api/tokens": "`siteflow login`: trades an email and password for a token (throttled like /signin)",
    "/verify": "the form to type a printed document's verification code (issue #12)",
    "/verify/{code}": "a printed document's verify page: title, version, hash, signers and state only; "
    "unknown codes are throttled per address",
}


_OPEN_PATTERNS = {template: compile_path(template)[0] for template in OPEN_ROUTES}


def is_page(route: object) -> bool:
    """A route declared with ``response_class=HTMLResponse`` is a page (a browser is sent to
    sign in); any other answers JSON (a program is told 401)."""
    response_class = getattr(route, "response_class", None)
    return isinstance(response_class, type) and issubclass(response_class, HTMLResponse)


def guard(request: Request) -> None:
    """The app-wide dependency (COM-6): every route not in :data:`OPEN_ROUTES` needs a
    signed-in user or a personal token — a page redirects to /signin, a JSON view answers 401.

    It is the app's default, not each view's duty, so a route added later is closed until it
    is opened here on purpose. Views that need the actor take :func:`require_actor` or
    :func:`require_page_actor`, which reuse this request's lookup.
    """
    route = request.scope.get("route")
    template = getattr(route, "path", None)
    if template in OPEN_ROUTES and _OPEN_PATTERNS[template].match(request.url.path):
        return  # (the address itself must match too: a router mounted under a prefix is not open)
    if is_page(route):
        require_page_actor(request)
    else:
        require_actor(request)


def signin_redirect(request: Request) -> str:
    """Where a page sends a browser that is not signed in: /signin, then back here."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"/signin?next={quote(target, safe='')}"


def page_session(request: Request) -> Actor | Response:
    """The browser session's user for a page and its forms, or the redirect to /signin (and
    back) that the page answers instead."""
    actor = session_actor(request)
    if actor is None:
        return RedirectResponse(signin_redirect(request), status_code=303, headers=HEADERS)
    return actor


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


def is_contact(actor: Actor, subject: str) -> bool:
    """The actor's email is one of the subject's listed contacts."""
    with read_scope() as session:
        form = roster_of(session, subject)
        return form is not None and form.contact(actor.user.email) is not None


def may_see(actor: Actor, subject: str) -> bool:
    return actor.sees_all or is_contact(actor, subject)


def may_export(actor: Actor, subject: str) -> bool:
    """Audit exports (COM-6): the auditor and office roles for any subject, the pm role for the
    subjects they are a contact of — not every subject an admin role lets them see."""
    if actor.has(EXPORT_ANY):
        return True
    return actor.has(frozenset({StaffRole.PM})) and is_contact(actor, subject)


def forbid_unless_visible(actor: Actor, subject: str) -> None:
    """404, not 403, for a subject the actor may not see: its existence is not theirs to learn."""
    if not may_see(actor, subject):
        raise HTTPException(status_code=404, detail=f"no project or window {subject!r} that you may see")
