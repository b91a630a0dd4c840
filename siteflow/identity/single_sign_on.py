"""Single sign-on with an OpenID Connect provider (authorization code flow, PKCE, nonce).

Why this shape:
- siteflow stays the authority on *who may do what*: the provider proves who a person is,
  but only an account an admin made with `siteflow users add` (with its roles) can sign in.
  Nobody gets an account by having one at the provider.
- The first SSO sign-in of an account links it to the provider identity (issuer and `sub`,
  which providers never reuse); afterwards only that identity signs it in. An email address
  re-assigned at the provider to someone else therefore does not reach the old owner's
  account, and an account linked to one identity refuses another that claims the same email.
- Emails count only when the provider says they are verified (`sso_require_verified_email`).
- The ID token is checked by joserfc (a kept JOSE library) against the provider's published
  keys: signature, issuer, audience, expiry, nonce. The code is exchanged with a PKCE verifier
  (RFC 7636), so a code stolen from the redirect is worthless without this browser's
  pending-request cookie. The two OAuth requests themselves are plain httpx: Authlib's httpx
  client now warns that it is deprecated for a package the registries do not hold.

The web routes (`siteflow.web.single_sign_on`) keep the pending request in a signed cookie
and turn an `SsoOutcome` into a session cookie or a page saying what happened.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import logging
import secrets
import time
from datetime import UTC, datetime
from threading import Lock
from urllib.parse import urlencode

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError
from sqlalchemy import select

from models.staff import StaffUser
from siteflow.db import session_scope
from siteflow.identity.audit import StaffAudit, StaffEvent, record
from siteflow.identity.sessions import NewSession, start_session
from siteflow.identity.users import normalize_email
from siteflow.settings import Settings, get_settings

log = logging.getLogger(__name__)

CALLBACK_PATH = "/signin/sso/callback"
METADATA_TTL_SECONDS = 3600.0
CLOCK_LEEWAY_SECONDS = 60
HTTP_TIMEOUT_SECONDS = 10.0
SIGNING_ALGORITHMS = ["RS256", "PS256", "ES256", "EdDSA"]  # never "none", never HS* with the secret


class SsoConfig(BaseModel):
    """What siteflow needs to know of its provider (from `SITEFLOW_SSO_*` settings)."""

    issuer: str
    client_id: str
    client_secret: SecretStr
    scopes: str
    redirect_uri: str
    label: str
    require_verified_email: bool


def sso_config(settings: Settings | None = None) -> SsoConfig | None:
    """The configured provider, or None when single sign-on is off (issuer, client id and
    secret all unset). Half a configuration is an error an admin must see at once."""
    s = settings or get_settings()
    given = [s.sso_issuer, s.sso_client_id, s.sso_client_secret]
    if not any(given):
        return None
    if not all(given):
        raise SsoMisconfigured(
            "single sign-on needs SITEFLOW_SSO_ISSUER, SITEFLOW_SSO_CLIENT_ID and "
            "SITEFLOW_SSO_CLIENT_SECRET together; set all three or none"
        )
    assert s.sso_issuer and s.sso_client_id and s.sso_client_secret  # for the type checker
    return SsoConfig(
        issuer=s.sso_issuer.rstrip("/"),
        client_id=s.sso_client_id,
        client_secret=s.sso_client_secret,
        scopes=s.sso_scopes,
        redirect_uri=s.resolved_public_url + CALLBACK_PATH,
        label=s.sso_label,
        require_verified_email=s.sso_require_verified_email,
    )


class SsoMisconfigured(RuntimeError):
    """The SSO settings are incomplete."""


class SsoUnavailable(RuntimeError):
    """The provider could not be reached or answered something unusable; the message says what."""


class ProviderMetadata(BaseModel):
    """The parts of the provider's discovery document siteflow uses."""

    model_config = ConfigDict(extra="ignore")

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None = None


_cache_lock = Lock()
_metadata: dict[str, tuple[float, ProviderMetadata]] = {}
_keys: dict[str, KeySet] = {}


def _get_json(url: str, what: str, **kwargs: object) -> object:
    try:
        response = httpx.get(url, timeout=HTTP_TIMEOUT_SECONDS, **kwargs)  # type: ignore[arg-type]
        response.raise_for_status()
        return response.json()
    except (httpx.HTTPError, ValueError) as exc:
        problem = type(exc).__name__
        raise SsoUnavailable(f"the sign-on provider's {what} could not be read ({problem})") from exc


def provider_metadata(config: SsoConfig, *, fresh: bool = False) -> ProviderMetadata:
    """The provider's discovery document, kept for an hour; its issuer must be ours exactly
    (OpenID Connect Discovery §4.3), or tokens could be taken from a look-alike provider."""
    now = time.monotonic()
    with _cache_lock:
        cached = _metadata.get(config.issuer)
    if cached is not None and not fresh and now - cached[0] < METADATA_TTL_SECONDS:
        return cached[1]
    raw = _get_json(f"{config.issuer}/.well-known/openid-configuration", "discovery document")
    try:
        meta = ProviderMetadata.model_validate(raw)
    except ValidationError as exc:
        raise SsoUnavailable("the sign-on provider's discovery document lacks required endpoints") from exc
    if meta.issuer.rstrip("/") != config.issuer:
        raise SsoUnavailable(f"the sign-on provider calls itself {meta.issuer!r}, not {config.issuer!r}")
    with _cache_lock:
        _metadata[config.issuer] = (now, meta)
    return meta


def _key_set(meta: ProviderMetadata, *, fresh: bool = False) -> KeySet:
    with _cache_lock:
        cached = _keys.get(meta.jwks_uri)
    if cached is not None and not fresh:
        return cached
    raw = _get_json(meta.jwks_uri, "signing keys")
    try:
        keys = KeySet.import_key_set(raw)  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise SsoUnavailable("the sign-on provider's signing keys could not be read") from exc
    with _cache_lock:
        _keys[meta.jwks_uri] = keys
    return keys


class PendingSignOn(BaseModel):
    """One browser's sign-on in progress, kept (signed) in a cookie until the provider sends
    the person back: the values that bind the answer to this browser and this attempt."""

    state: str
    nonce: str
    code_verifier: str
    next: str | None = None
    started: float  # epoch seconds


def code_challenge(verifier: str) -> str:
    """RFC 7636 §4.2, method S256."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def begin(config: SsoConfig, next_path: str | None) -> tuple[str, PendingSignOn]:
    """Where to send the browser, and what to remember until it comes back."""
    meta = provider_metadata(config)
    pending = PendingSignOn(
        state=secrets.token_urlsafe(24),
        nonce=secrets.token_urlsafe(24),
        code_verifier=secrets.token_urlsafe(48),
        next=next_path,
        started=time.time(),
    )
    query = urlencode(
        {
            "response_type": "code",
            "client_id": config.client_id,
            "redirect_uri": config.redirect_uri,
            "scope": config.scopes,
            "state": pending.state,
            "nonce": pending.nonce,
            "code_challenge": code_challenge(pending.code_verifier),
            "code_challenge_method": "S256",
        }
    )
    separator = "&" if "?" in meta.authorization_endpoint else "?"
    return f"{meta.authorization_endpoint}{separator}{query}", pending


def _exchange(config: SsoConfig, meta: ProviderMetadata, code: str, verifier: str) -> dict[str, object]:
    """The token request (OIDC Core §3.1.3.1), the client authenticated by HTTP Basic."""
    try:
        response = httpx.post(
            meta.token_endpoint,
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": config.redirect_uri,
                "code_verifier": verifier,
            },
            auth=(config.client_id, config.client_secret.get_secret_value()),
            headers={"Accept": "application/json"},
            timeout=HTTP_TIMEOUT_SECONDS,
        )
    except httpx.HTTPError as exc:
        raise SsoUnavailable(f"the sign-on provider's token endpoint could not be reached ({exc!r})") from exc
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200 or not isinstance(body, dict):
        error = body.get("error") if isinstance(body, dict) else None
        raise SsoRejected(f"code exchange refused: HTTP {response.status_code} {error or ''}".strip())
    return body


class SsoResult(enum.StrEnum):
    SIGNED_IN = "signed-in"
    NO_ACCOUNT = "no-account"  # proven, but no siteflow account has this email
    DISABLED = "disabled"
    LINKED_ELSEWHERE = "linked-elsewhere"  # the account is linked to another provider identity
    EMAIL_UNVERIFIED = "email-unverified"
    REJECTED = "rejected"  # the provider's answer did not prove anything (bad token, denied …)


class SsoOutcome(BaseModel):
    result: SsoResult
    email: str | None = None
    session: NewSession | None = None
    detail: str = ""  # for the log, never a token


class ProvenIdentity(BaseModel):
    """What the provider vouched for, after every check passed."""

    subject: str  # "<issuer> <sub>"
    email: str | None
    email_verified: bool


def _id_token_claims(
    config: SsoConfig, meta: ProviderMetadata, id_token: str, nonce: str
) -> dict[str, object]:
    try:
        try:
            token = jwt.decode(id_token, _key_set(meta), algorithms=SIGNING_ALGORITHMS)
        except JoseError:  # perhaps the provider rotated its keys since we fetched them
            token = jwt.decode(id_token, _key_set(meta, fresh=True), algorithms=SIGNING_ALGORITHMS)
        registry = jwt.JWTClaimsRegistry(
            leeway=CLOCK_LEEWAY_SECONDS,
            iss={"essential": True, "value": meta.issuer},
            aud={"essential": True, "value": config.client_id},
            sub={"essential": True},
            exp={"essential": True},
            nonce={"essential": True, "value": nonce},
        )
        registry.validate(token.claims)
    except (JoseError, ValueError) as exc:
        raise SsoRejected(f"ID token refused: {type(exc).__name__}: {exc}") from exc
    claims = dict(token.claims)
    audience = claims.get("aud")
    if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != config.client_id:
        raise SsoRejected("ID token for several audiences without us as its authorized party")
    return claims


class SsoRejected(Exception):
    """The provider's answer proves nothing (a bad or foreign token, a refused code)."""


def _userinfo(meta: ProviderMetadata, access_token: str, subject: str) -> dict[str, object]:
    """Providers that keep the email out of the ID token give it here (OIDC Core §5.3); the
    answer counts only for the same `sub` (§5.3.2), or it could be another person's."""
    if meta.userinfo_endpoint is None:
        return {}
    raw = _get_json(meta.userinfo_endpoint, "user info", headers={"Authorization": f"Bearer {access_token}"})
    if not isinstance(raw, dict) or raw.get("sub") != subject:
        raise SsoRejected("user info answered for another subject")
    return raw


def prove(config: SsoConfig, pending: PendingSignOn, code: str) -> ProvenIdentity:
    """Exchange the code (with this browser's PKCE verifier) and check the ID token."""
    meta = provider_metadata(config)
    token = _exchange(config, meta, code, pending.code_verifier)
    id_token = token.get("id_token")
    if not isinstance(id_token, str):
        raise SsoRejected("the provider sent no ID token (is 'openid' among the scopes?)")
    claims = _id_token_claims(config, meta, id_token, pending.nonce)
    sub = str(claims["sub"])
    if "email" not in claims and isinstance(token.get("access_token"), str):
        claims = {**_userinfo(meta, str(token["access_token"]), sub), **claims}
    email = claims.get("email")
    return ProvenIdentity(
        subject=f"{meta.issuer} {sub}",
        email=normalize_email(email) if isinstance(email, str) and email else None,
        email_verified=claims.get("email_verified") is True,
    )


def _refuse(result: SsoResult, email: str | None, detail: str) -> SsoOutcome:
    log.warning("single sign-on for %s refused: %s (%s)", email or "?", result.value, detail)
    return SsoOutcome(result=result, email=email, detail=detail)


def sign_in_proven(config: SsoConfig, who: ProvenIdentity, address: str) -> SsoOutcome:
    """A session for the siteflow account this provider identity may sign in, if any."""
    with session_scope() as session:
        user = session.execute(
            select(StaffUser).where(StaffUser.sso_subject == who.subject)
        ).scalar_one_or_none()
        if user is None:
            if who.email is None:
                return _refuse(SsoResult.NO_ACCOUNT, None, "the provider gave no email")
            if config.require_verified_email and not who.email_verified:
                return _refuse(SsoResult.EMAIL_UNVERIFIED, who.email, "email_verified is not true")
            user = session.execute(select(StaffUser).where(StaffUser.email == who.email)).scalar_one_or_none()
            if user is None:
                return _refuse(SsoResult.NO_ACCOUNT, who.email, "no account with this email")
            if user.sso_subject is not None:
                return _refuse(SsoResult.LINKED_ELSEWHERE, who.email, "account linked to another identity")
            if user.disabled_at is not None:
                return _refuse(SsoResult.DISABLED, who.email, "account disabled")
            user.sso_subject = who.subject
            record(
                session,
                StaffEvent.SSO_LINKED,
                user.email,
                StaffAudit(user_id=user.id, email=user.email, address=address, sso_subject=who.subject),
            )
        if user.disabled_at is not None:
            return _refuse(SsoResult.DISABLED, user.email, "account disabled")
        new = start_session(session, user.id, datetime.now(UTC))
        record(
            session,
            StaffEvent.SIGNED_IN,
            user.email,
            StaffAudit(user_id=user.id, email=user.email, address=address, method="sso"),
        )
        return SsoOutcome(result=SsoResult.SIGNED_IN, email=user.email, session=new)


def finish(config: SsoConfig, pending: PendingSignOn, code: str, address: str) -> SsoOutcome:
    """The provider sent the person back with a code: prove them and sign them in."""
    try:
        who = prove(config, pending, code)
    except SsoRejected as exc:
        return _refuse(SsoResult.REJECTED, None, str(exc))
    return sign_in_proven(config, who, address)
