"""The personal link an outbox row carries, derived when the relay renders the mail (issue #10 item 3).

The row names a link (``link_kind``, ``link_id``) and the link row names its key; the token is
derived again here (:mod:`siteflow.link_keys`) and checked against the SHA-256 the link was
issued with, so a mail never carries a link that would not open. The key directory also needs
tending — a new key every ``link_key_hours``, old keys deleted once no unsent mail needs them —
which the relay asks for here (:func:`tend_keys`), since it is the one that knows when mails
are sent.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.approval_link import ApprovalLink
from models.outbox import LinkKind, OutboxMessage
from models.staff import PasswordLink
from siteflow import approval_links, link_keys
from siteflow.approval_links import LINK_PLACEHOLDER, token_hash
from siteflow.db import session_scope
from siteflow.identity import password_links
from siteflow.settings import Settings, get_settings

UNSENT = ("pending", "sending")


class LinkUnavailable(Exception):
    """The row's link cannot be mailed: permanent for this row, and the text says what to do."""


@dataclass(frozen=True)
class MailLink:
    placeholder: str  # where the link goes in the row's text
    url: str


_MODELS: dict[LinkKind, type[ApprovalLink] | type[PasswordLink]] = {
    LinkKind.APPROVAL: ApprovalLink,
    LinkKind.PASSWORD: PasswordLink,
}


def _url(kind: LinkKind, token: str) -> MailLink:
    if kind is LinkKind.PASSWORD:
        return MailLink(password_links.PLACEHOLDER, password_links.link_url(token))
    return MailLink(LINK_PLACEHOLDER, approval_links.link_url(token))


def token_of(row: OutboxMessage) -> str | None:
    """The token of the row's link, derived (None for a mail without a link), in a
    transaction of its own: see :func:`token_in`."""
    if row.link_id is None or row.link_kind is None:
        return None
    with session_scope() as session:
        return token_in(session, row)


def token_in(session: Session, row: OutboxMessage) -> str | None:
    """The token of the row's link, derived (None for a mail without a link).

    A link issued before derived tokens (its ``key_id`` unset: its random token was kept in the
    outbox row, dropped by migration 0018) gets one now, under the current key, and its stored
    hash is replaced in the same transaction — so the old token, which PostgreSQL may still hold
    in a dead row version, no longer opens anything. Raises LinkUnavailable when the link or
    its key is gone, or the key does not give the link's token (another key directory)."""
    if row.link_id is None or row.link_kind is None:
        return None
    kind = LinkKind(row.link_kind)
    link: ApprovalLink | PasswordLink | None = (
        session.get(PasswordLink, row.link_id)
        if kind is LinkKind.PASSWORD
        else session.get(ApprovalLink, row.link_id)
    )
    if link is None:
        raise LinkUnavailable(f"the {kind.value} link this mail carries no longer exists")
    if link.key_id is None:
        key = link_keys.current_key()
        token = key.token(kind, link.id)
        link.key_id, link.token_sha256 = key.key_id, token_hash(token)
        return token
    try:
        key = link_keys.load(link.key_id)
    except link_keys.LinkKeyMissing as missing:
        raise LinkUnavailable(
            f"{missing}, so the mail's {kind.value} link cannot be made; issue a new link "
            "(a reminder, or `siteflow users reset` for a password link)"
        ) from None
    token = key.token(kind, link.id)
    if not hmac.compare_digest(token_hash(token), link.token_sha256):
        raise LinkUnavailable(
            f"link key {link.key_id} in {link_keys.keys_dir()} does not give this link's token: it "
            "is not the key directory the link was issued with (SITEFLOW_LINK_KEYS_DIR must be the "
            "same for every siteflow process)"
        )
    return token


def link_for(row: OutboxMessage) -> MailLink | None:
    """The placeholder in the row's text and the link that replaces it."""
    token = token_of(row)
    if token is None or row.link_kind is None:
        return None
    return _url(LinkKind(row.link_kind), token)


def keys_needed() -> set[str]:
    """The keys of every link whose mail is not sent yet: they must be kept."""
    needed: set[str] = set()
    with session_scope() as session:
        for kind, model in _MODELS.items():
            needed.update(
                k
                for k in session.execute(
                    select(model.key_id)
                    .join(OutboxMessage, OutboxMessage.link_id == model.id)
                    .where(OutboxMessage.link_kind == kind.value, OutboxMessage.status.in_(UNSENT))
                ).scalars()
                if k is not None
            )
    return needed


def tend_keys(settings: Settings | None = None) -> list[str]:
    """Rotate the link key when it is due, and delete the old keys no unsent mail needs;
    returns the ids deleted (for the relay's log: ids only, never a key)."""
    s = settings or get_settings()
    link_keys.rotate_if_due(timedelta(hours=s.link_key_hours))
    return link_keys.prune(keys_needed())
