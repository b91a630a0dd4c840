"""Verification codes printed on every document version (issue #12).

A code is 12 characters of Crockford base32 (60 random bits from ``secrets``), stored with the
version the first time it is needed (when the version is issued, or for older versions when
first printed). It is random rather than derived from the document id so that nothing about
the document can be computed from it, a copy of the database on another host verifies the
same papers, and no key has to be kept or rotated. Printed as three groups of four
(``7K3M-Q9XD-2HPW``) to be read aloud; typed back in any case, with or without dashes and
spaces, and with the letters people confuse with digits (O, I, L) taken as 0 and 1.
"""

from __future__ import annotations

import re
import secrets

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.document_print import DocumentCode
from siteflow.settings import get_settings

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U
LENGTH = 12
_CANONICAL = re.compile(f"^[{ALPHABET}]{{{LENGTH}}}$")
_SEPARATORS = re.compile(r"[\s\-_.·]+")
_CONFUSED = str.maketrans({"O": "0", "I": "1", "L": "1"})


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def grouped(code: str) -> str:
    """``7K3MQ9XD2HPW`` → ``7K3M-Q9XD-2HPW``: what the paper shows and people read aloud."""
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def canonical(typed: str) -> str | None:
    """The stored form of a typed or scanned code, or None when it cannot be one (so an
    unknown code is answered without a database lookup)."""
    if len(typed) > 64:
        return None
    code = _SEPARATORS.sub("", typed).upper().translate(_CONFUSED)
    return code if _CANONICAL.match(code) else None


def verify_url(code: str) -> str:
    """The public page the QR code opens (``SITEFLOW_PUBLIC_URL`` + ``/verify/CODE``)."""
    return f"{get_settings().resolved_public_url}/verify/{grouped(code)}"


def code_for(session: Session, document_id: str) -> str:
    """The version's code, made now if it has none. Two processes making one at once: the
    primary key keeps one, and the loser reads the winner's (a savepoint keeps the caller's
    transaction)."""
    found = session.get(DocumentCode, document_id)
    if found is not None:
        return found.code
    for _ in range(5):
        code = new_code()
        try:
            with session.begin_nested():
                session.add(DocumentCode(document_id=document_id, code=code))
            return code
        except IntegrityError:
            raced = session.execute(
                select(DocumentCode.code).where(DocumentCode.document_id == document_id)
            ).scalar_one_or_none()
            if raced is not None:
                return raced
    raise RuntimeError("could not store a unique verification code")  # 60 bits: never in practice


def document_of(session: Session, typed: str) -> str | None:
    """The document id a typed code belongs to, or None."""
    code = canonical(typed)
    if code is None:
        return None
    return session.execute(
        select(DocumentCode.document_id).where(DocumentCode.code == code)
    ).scalar_one_or_none()
