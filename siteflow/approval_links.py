"""Tokens for approval links: long, unguessable, single-use, never stored (only their hash).

A link's token is derived from its id under the current link key (:mod:`siteflow.link_keys`),
so neither the link row nor the outbox row that mails it holds the token: the relay derives it
again when it renders the mail. The token is looked up by its SHA-256 and compared in constant
time; the POST form carries an HMAC of the token under a per-installation key, so a cross-site
form cannot submit.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.approval_link import ApprovalLink
from models.base import new_id
from models.outbox import LinkKind
from siteflow import link_keys
from siteflow.settings import get_settings

TOKEN_BYTES = 32
LINK_PLACEHOLDER = "{approval_link}"


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def link_url(token: str) -> str:
    return f"{get_settings().resolved_public_url}/a/{token}"


def issue_link(session: Session, gate_id: str, name: str, email: str, deadline: datetime | None) -> str:
    """Create a link for one recipient and one gate; returns its id, which the outbox row that
    mails it names (``link_kind=APPROVAL, link_id=…``). A reissued link is a new id, so a new
    token; the token itself is kept nowhere."""
    key = link_keys.current_key()
    link_id = new_id()
    expires = deadline or datetime.now(UTC) + timedelta(days=get_settings().link_days)
    session.add(
        ApprovalLink(
            id=link_id,
            gate_id=gate_id,
            recipient_name=name,
            recipient_email=email,
            token_sha256=token_hash(key.token(LinkKind.APPROVAL, link_id)),
            key_id=key.key_id,
            expires_at=expires,
        )
    )
    return link_id


def find_link(session: Session, token: str) -> ApprovalLink | None:
    if not token or len(token) > 200:
        return None
    digest = token_hash(token)
    link = session.execute(
        select(ApprovalLink).where(ApprovalLink.token_sha256 == digest)
    ).scalar_one_or_none()
    if link is None or not hmac.compare_digest(link.token_sha256, digest):
        return None
    return link


def installation_key() -> bytes:
    """32 random bytes made once per installation (``SITEFLOW_HOME/secret.key``), for HMACs of
    form tokens: approval pages and the staff sign-in forms."""
    path = get_settings().home / "secret.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(secrets.token_bytes(32))
        tmp.chmod(0o600)
        tmp.replace(path)
    return path.read_bytes()


def form_token(token: str) -> str:
    return hmac.new(installation_key(), token.encode("utf-8"), hashlib.sha256).hexdigest()


def form_token_ok(token: str, given: str) -> bool:
    return hmac.compare_digest(form_token(token), given or "")
