"""Failed sign-ins, counted in the database, and when they refuse further tries (429).

Why these keys. A lock per email alone would let anyone lock any owner out of their own
account for as long as they keep failing on purpose. So failures are counted

- per (email, address): after `signin_failure_limit` (10) failures for one email from one
  client address within `signin_window_minutes` (15), that email is refused *from that
  address* until enough of those failures are older than the window; the owner signing in
  from any other address is not affected;
- per address: after `signin_address_failure_limit` (50) failures from one address, whatever
  the emails, that address is refused (one client trying many accounts).

A successful sign-in clears its (email, address) count, so an owner who mistypes a few times
and then gets it right starts afresh. There is deliberately no lock per email across all
addresses: a guesser spread over many addresses gets 10 tries per address per window against
a password of at least 12 characters hashed with argon2id, which we take over letting that
guesser lock the owner out. An owner who shares the attacker's address (the same NAT) may
have to wait out the window, or use a password link. The client address is the TCP peer
(`request.client.host`); behind a reverse proxy every client would share the proxy's address
and the per-address limit would apply to all of them together.

Each attempt is counted *before* its password is checked (`admit`), and taken back when it
succeeds, so a burst of parallel guesses cannot all pass the check before any is counted.
Counts live in the database, in one row per key and minute, so several web processes throttle
together; minutes older than the window are deleted as new ones are counted.
"""

from __future__ import annotations

import enum
import hashlib
import time

from pydantic import BaseModel
from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from models.staff import SigninFailureCount
from siteflow.db import session_scope
from siteflow.settings import get_settings


class ThrottleScope(enum.StrEnum):
    PAIR = "email+address"
    ADDRESS = "address"


class Admitted(BaseModel):
    """The attempt may check its password; it is counted as a failure until `settle_success`."""

    email: str
    address: str
    minute: int


class Refused(BaseModel):
    """Too many failures: no password is checked; try again after `retry_after_seconds`."""

    scope: ThrottleScope
    retry_after_seconds: int


def _key(scope: ThrottleScope, email: str, address: str) -> str:
    text = f"{email}\n{address}" if scope is ThrottleScope.PAIR else address
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _counts(session: Session, scope: ThrottleScope, key: str, since: int) -> list[tuple[int, int]]:
    rows = session.execute(
        select(SigninFailureCount.minute, SigninFailureCount.count)
        .where(
            SigninFailureCount.scope == scope.value,
            SigninFailureCount.key_sha256 == key,
            SigninFailureCount.minute >= since,
        )
        .order_by(SigninFailureCount.minute)
    ).all()
    return [(int(m), int(c)) for m, c in rows]


def _retry_after(counts: list[tuple[int, int]], limit: int, window: int, now: float) -> int | None:
    """Seconds until fewer than `limit` failures are left in the window, or None if already so."""
    total = sum(c for _, c in counts)
    if total < limit:
        return None
    for minute, count in counts:  # oldest first: each leaves the window at (minute + window) * 60
        total -= count
        if total < limit:
            return max(1, int((minute + window) * 60 - now) + 1)
    return max(1, int(window * 60))


def admit(email: str, address: str, now: float | None = None) -> Admitted | Refused:
    """Count this attempt, or refuse it when its (email, address) or address is over the limit."""
    s = get_settings()
    now = time.time() if now is None else now
    minute = int(now // 60)
    since = minute - s.signin_window_minutes + 1
    address = address[:64]
    limits = {
        ThrottleScope.PAIR: s.signin_failure_limit,
        ThrottleScope.ADDRESS: s.signin_address_failure_limit,
    }
    with session_scope() as session:
        for scope, limit in limits.items():
            counts = _counts(session, scope, _key(scope, email, address), since)
            wait = _retry_after(counts, limit, s.signin_window_minutes, now)
            if wait is not None:
                return Refused(scope=scope, retry_after_seconds=wait)
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        for scope in limits:
            session.execute(
                insert(SigninFailureCount)
                .values(scope=scope.value, key_sha256=_key(scope, email, address), minute=minute, count=1)
                .on_conflict_do_update(
                    index_elements=["scope", "key_sha256", "minute"],
                    set_={"count": SigninFailureCount.count + 1},
                )
            )
        session.execute(delete(SigninFailureCount).where(SigninFailureCount.minute < since))
    return Admitted(email=email, address=address, minute=minute)


def settle_success(admitted: Admitted) -> None:
    """The attempt signed in: it was no failure. Clears the (email, address) count."""
    with session_scope() as session:
        session.execute(
            delete(SigninFailureCount).where(
                SigninFailureCount.scope == ThrottleScope.PAIR.value,
                SigninFailureCount.key_sha256 == _key(ThrottleScope.PAIR, admitted.email, admitted.address),
            )
        )
        session.execute(
            update(SigninFailureCount)
            .where(
                SigninFailureCount.scope == ThrottleScope.ADDRESS.value,
                SigninFailureCount.key_sha256 == _key(ThrottleScope.ADDRESS, "", admitted.address),
                SigninFailureCount.minute == admitted.minute,
                SigninFailureCount.count > 0,
            )
            .values(count=SigninFailureCount.count - 1)
        )
