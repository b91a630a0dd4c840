"""Password hashing (argon2id, through argon2-cffi) and the password rule.

argon2id is memory-hard, so a stolen table is slow to guess; argon2-cffi's defaults follow
RFC 9106's recommended profile. A hash made with older parameters is re-made at the next
successful sign-in (`needs_rehash`). Unknown emails are checked against a dummy hash, so a
wrong email takes as long as a wrong password and the answer's timing says nothing.
"""

from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 12
MAX_LENGTH = 1024  # hashing a megabyte on every attempt would be a cheap way to load the server


class WeakPassword(ValueError):
    """The password does not follow the rule; the message says why, in both languages."""


@lru_cache(maxsize=1)
def _hasher() -> PasswordHasher:
    return PasswordHasher()


def check_rule(password: str) -> None:
    """Raise WeakPassword unless the password may be used."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(
            f"密码至少需要 {MIN_LENGTH} 个字符 / A password needs at least {MIN_LENGTH} characters"
        )
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"密码最多 {MAX_LENGTH} 个字符 / A password has at most {MAX_LENGTH} characters")
    if not password.strip():
        raise WeakPassword("密码不能只有空格 / A password cannot be only spaces")


def hash_password(password: str) -> str:
    """The argon2id hash of a password that follows the rule (``$argon2id$…``)."""
    check_rule(password)
    return _hasher().hash(password)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher().hash("not a password anyone has: equalises the time of a wrong email")


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when the password matches; a missing hash is checked against a dummy one (same time)."""
    if len(password) > MAX_LENGTH:
        return False
    try:
        return _hasher().verify(stored_hash or _dummy_hash(), password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _hasher().check_needs_rehash(stored_hash)


def rehash(password: str) -> str:
    """A new hash of a password that just verified (the rule was checked when it was set)."""
    return _hasher().hash(password)
