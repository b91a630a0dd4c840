"""The Ed25519 keys that sign the audit chain, kept outside the database (issue #10 item 4).

Whoever can write siteflow's tables can recompute every hash of the chain (COM-6: audit data
must be protected, and the chain alone protects only against naive edits). They cannot make
a signature without the private key, so every record and every published checkpoint is
signed with a key that lives in a directory of its own — ``SITEFLOW_HOME/audit/keys`` by
default, or ``SITEFLOW_AUDIT_KEYS_DIR`` (e.g. a mounted secret) — never in a table.

The directory holds:

- ``keyring.json``: every public key ever used, with its key id and validity
  (``valid_from`` … ``retired_at``). It is all verification needs; it is not secret, and a
  copy may be kept anywhere (it is what an auditor is given).
- ``<key id>.pem``: the private key of the one current key, mode 0600. Rotation
  (:func:`rotate`) retires the current key — its ``retired_at`` is set and its private key
  file deleted — and makes a new one. Old records still verify with the retired public key;
  a signature by a retired key dated after its retirement is refused by verification, and
  :func:`signer_for` refuses to sign with a retired key at all.

The first key is made on first use, under a lock file, so the several processes of a stack
(flows, web, keeper, relay) that append at once end up with one key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from siteflow.key_directory import locked
from siteflow.settings import Settings, get_settings

KEYRING = "keyring.json"
ALGORITHM = "ed25519"


class KeyRetired(RuntimeError):
    """A retired key was asked to sign: it may only verify what it signed before."""


@dataclass(frozen=True)
class PublicKey:
    key_id: str
    public_key: str  # base64 of the raw 32 bytes
    valid_from: datetime
    retired_at: datetime | None

    def valid_at(self, at: datetime) -> bool:
        return self.valid_from <= at and (self.retired_at is None or at < self.retired_at)

    def verifies(self, message: bytes, signature: str) -> bool:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(self.public_key))
        try:
            key.verify(base64.b64decode(signature, validate=True), message)
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True)
class Keyring:
    """The public keys verification trusts, read from ``keyring.json`` (never from the database)."""

    keys: tuple[PublicKey, ...]

    def get(self, key_id: str) -> PublicKey | None:
        return next((k for k in self.keys if k.key_id == key_id), None)

    @property
    def signing_began(self) -> datetime | None:
        """When the first key became valid: records written before it are legitimately unsigned."""
        return min((k.valid_from for k in self.keys), default=None)

    def problem(self, key_id: str | None, message: bytes, signature: str | None, at: datetime) -> str | None:
        """Why a signature dated ``at`` does not hold, in words; None when it holds."""
        if not key_id or not signature:
            return "not signed"
        key = self.get(key_id)
        if key is None:
            return f"signed by key {key_id}, which is not in the keyring"
        if not key.verifies(message, signature):
            return f"signature by key {key_id} does not match: rewritten after it was signed"
        if at < key.valid_from:
            return f"signed by key {key_id} before that key existed ({key.valid_from:%Y-%m-%d %H:%M:%S} UTC)"
        if key.retired_at is not None and at >= key.retired_at:
            return (
                f"signed by key {key_id} after it was retired ({key.retired_at:%Y-%m-%d %H:%M:%S} UTC): "
                "a retired key signs nothing new"
            )
        return None


@dataclass(frozen=True)
class SigningKey:
    key_id: str
    private_key: Ed25519PrivateKey

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self.private_key.sign(message)).decode("ascii")


def keys_dir(settings: Settings | None = None) -> Path:
    s = settings or get_settings()
    return s.audit_keys_dir or s.home / "audit" / "keys"


def key_id_of(public_key: Ed25519PublicKey) -> str:
    """A key id derived from the key itself, so two keys can never share one."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519-" + hashlib.sha256(raw).hexdigest()[:16]


def _parse(raw: str) -> datetime:
    return datetime.fromisoformat(raw).astimezone(UTC)


def load_keyring(directory: Path | None = None) -> Keyring:
    path = (directory or keys_dir()) / KEYRING
    try:
        stat = path.stat()
    except FileNotFoundError:
        return Keyring(())
    return _read_keyring(path, stat.st_mtime_ns, stat.st_size, stat.st_ino)


@lru_cache(maxsize=8)
def _read_keyring(path: Path, _mtime_ns: int, _size: int, _inode: int) -> Keyring:
    """Cached per version of the file: a rotation by another process is seen at the next stat."""
    return parse_keyring(path.read_text(encoding="utf-8"))


def parse_keyring(text: str) -> Keyring:
    """A ``keyring.json`` as text: the host's, or a copy given to an auditor or shipped in a
    handover package (ENG-29). Raises ValueError (or KeyError, TypeError) for anything else."""
    body = json.loads(text)
    return Keyring(
        tuple(
            PublicKey(
                key_id=k["key_id"],
                public_key=k["public_key"],
                valid_from=_parse(k["valid_from"]),
                retired_at=_parse(k["retired_at"]) if k.get("retired_at") else None,
            )
            for k in body["keys"]
        )
    )


def _write_keyring(directory: Path, keyring: Keyring) -> None:
    body = {
        "algorithm": ALGORITHM,
        "keys": [
            {
                "key_id": k.key_id,
                "public_key": k.public_key,
                "valid_from": k.valid_from.isoformat(timespec="microseconds"),
                "retired_at": k.retired_at.isoformat(timespec="microseconds") if k.retired_at else None,
            }
            for k in keyring.keys
        ],
    }
    tmp = directory / f".{KEYRING}.tmp"
    tmp.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    os.chmod(tmp, 0o644)  # public: verification anywhere needs it
    os.replace(tmp, directory / KEYRING)


def _new_key(directory: Path, now: datetime) -> PublicKey:
    private = Ed25519PrivateKey.generate()
    public = private.public_key()
    key_id = key_id_of(public)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(directory / f"{key_id}.pem", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return PublicKey(key_id, base64.b64encode(raw).decode("ascii"), now, None)


def signer_for(key_id: str, directory: Path | None = None) -> SigningKey:
    """The private key of ``key_id``; refused for a retired key, even if its file survived."""
    where = directory or keys_dir()
    key = load_keyring(where).get(key_id)
    if key is None:
        raise LookupError(f"no key {key_id} in {where / KEYRING}")
    if key.retired_at is not None:
        raise KeyRetired(
            f"key {key_id} was retired on {key.retired_at:%Y-%m-%d %H:%M:%S} UTC; it signs nothing new"
        )
    return _load_private(where / f"{key_id}.pem", key_id)


@lru_cache(maxsize=8)
def _load_private(path: Path, key_id: str) -> SigningKey:
    private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(private, Ed25519PrivateKey) or key_id_of(private.public_key()) != key_id:
        raise RuntimeError(f"{path} is not the Ed25519 key {key_id}")
    return SigningKey(key_id, private)


def current_key(keyring: Keyring) -> PublicKey | None:
    return next((k for k in reversed(keyring.keys) if k.retired_at is None), None)


def signing_key(directory: Path | None = None) -> SigningKey:
    """The current key, made on first use (one key however many processes ask at once)."""
    where = directory or keys_dir()
    current = current_key(load_keyring(where))
    if current is None:
        with locked(where):
            keyring = load_keyring(where)
            current = current_key(keyring)
            if current is None:
                current = _new_key(where, datetime.now(UTC))
                _write_keyring(where, Keyring((*keyring.keys, current)))
    return signer_for(current.key_id, where)


def rotate(directory: Path | None = None) -> tuple[PublicKey | None, PublicKey]:
    """Retire the current key (its private key file is deleted) and make the next one.

    The two share one instant: the old key is valid up to it, the new one from it on.
    """
    where = directory or keys_dir()
    with locked(where):
        keyring = load_keyring(where)
        old = current_key(keyring)
        now = datetime.now(UTC)
        new = _new_key(where, now)
        keys = tuple(
            replace(k, retired_at=now) if old and k.key_id == old.key_id else k for k in keyring.keys
        )
        _write_keyring(where, Keyring((*keys, new)))
        if old is not None:
            (where / f"{old.key_id}.pem").unlink(missing_ok=True)
            _load_private.cache_clear()
    return (replace(old, retired_at=now) if old else None), new
