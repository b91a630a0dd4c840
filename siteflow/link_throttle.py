"""Throttle repeated bad approval-link tokens from one address (issue #4).

Guessing a token is hopeless (32 random bytes), but a client that keeps trying gets a 429
after `LIMIT` bad tokens within the current and the previous minute. Only bad tokens count,
so a real approver with a valid link is never held up. The counts live in the database, so
every web process behind a load balancer throttles together; old minutes are deleted as new
ones are counted.
"""

from __future__ import annotations

import time

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from models.approval_link import BadLinkCount
from siteflow.db import session_scope

LIMIT = 20


def note_bad_token(address: str, now: float | None = None) -> bool:
    """Count one bad token from `address`; True when that address is now throttled."""
    minute = int((time.time() if now is None else now) // 60)
    with session_scope() as session:
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        session.execute(
            insert(BadLinkCount)
            .values(address=address[:64], minute=minute, count=1)
            .on_conflict_do_update(
                index_elements=["address", "minute"], set_={"count": BadLinkCount.count + 1}
            )
        )
        recent = session.scalar(
            select(func.sum(BadLinkCount.count)).where(
                BadLinkCount.address == address[:64], BadLinkCount.minute >= minute - 1
            )
        )
        session.execute(delete(BadLinkCount).where(BadLinkCount.minute < minute - 1))
    return int(recent or 0) > LIMIT


def throttled(address: str, now: float | None = None) -> bool:
    """True when `address` has had more than `LIMIT` bad tokens (or codes) counted in the
    current and the previous minute, without counting one more: the verify page refuses such
    an address even a good code, so a guesser cannot tell a hit from a miss once throttled."""
    minute = int((time.time() if now is None else now) // 60)
    with session_scope() as session:
        recent = session.scalar(
            select(func.sum(BadLinkCount.count)).where(
                BadLinkCount.address == address[:64], BadLinkCount.minute >= minute - 1
            )
        )
    return int(recent or 0) > LIMIT
