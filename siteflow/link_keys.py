"""The keys that mailed-link tokens are derived from, kept outside the database (issue #10 item 3).

A token that is stored, even for the minutes until its mail is sent, is readable in the
database's files long after it was "erased": PostgreSQL keeps the nulled value in the dead
row version (and in its WAL) until VACUUM, SQLite in freed pages and its WAL unless they are
overwritten. So an approval link's or password link's token is never stored at all. It is
*derived* — ``base64url(HMAC-SHA256(key, "siteflow-link-v1" ‖ kind ‖ link id))`` — when a link is
issued (to keep its SHA-256, the only thing the database holds, for lookups) and again when the
relay renders the mail. The outbox row names only which link to build (``link_kind``,
``link_id``); the link row names which key (``key_id``).

Keys live in a directory of their own — ``SITEFLOW_HOME/link-keys`` or ``SITEFLOW_LINK_KEYS_DIR``
(at scale: one shared writable volume mounted on every host) — one file ``<key id>.key`` per key, 32 random
bytes, mode 0600, in a 0700 directory. The web, the served flows, the keeper, the relay and the
CLI all issue or mail links, so they must all read the same directory; the first key is made on
first use, under a lock, so processes starting at once agree on one.

Checking a token never needs a key: the web looks the token up by its SHA-256. So rotation
never invalidates a link; a link stays valid until it expires or is used. A key is needed only
until the mails derived from it are sent, which is what rotation and pruning use:

- :func:`rotate_if_due` (the relay, every ``link_key_hours``) makes a new current key;
- :func:`prune` deletes a key once it has been superseded for :data:`GRACE` and no unsent mail
  needs it. From then on, nothing on the host — database, files, key directory — can give back
  the token of a mail already sent: it exists only in the recipient's mailbox, as before.

Whoever holds a key that is still kept *and* can read the link ids in the database can compute
the tokens of that key's links; the key directory is therefore never inside the database, never
logged, never in a backup of the database alone.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from models.outbox import LinkKind
from siteflow.key_directory import locked
from siteflow.settings import Settings, get_settings

KEY_BYTES = 32
SUFFIX = ".key"
GRACE = timedelta(minutes=10)  # a process that read the old key just before a rotation still issues with it
_KEY_ID = re.compile(r"^(\d{8}T\d{12}Z)-[0-9a-f]{8}$")
_DOMAIN = b"siteflow-link-v1"


class LinkKeyMissing(LookupError):
    """A link's key is not in the key directory (deleted by hand, or another host's directory)."""


@dataclass(frozen=True)
class LinkKey:
    key_id: str
    secret: bytes = field(repr=False)  # never in a repr, a log line or a traceback's locals dump

    @property
    def made_at(self) -> datetime:
        return made_at(self.key_id)

    def token(self, kind: LinkKind, link_id: str) -> str:
        """The link's token: 43 URL-safe characters, like the random ones it replaces."""
        message = b"\0".join((_DOMAIN, kind.value.encode(), link_id.encode()))
        mac = hmac.new(self.secret, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def keys_dir(settings: Settings | None = None) -> Path:
    s = settings or get_settings()
    return s.link_keys_dir or s.home / "link-keys"


def made_at(key_id: str) -> datetime:
    m = _KEY_ID.match(key_id)
    if m is None:
        raise ValueError(f"not a link key id: {key_id!r}")
    return datetime.strptime(m.group(1), "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC)


def key_ids(directory: Path | None = None) -> list[str]:
    """Every key kept, oldest first (ids sort by the time they were made)."""
    where = directory or keys_dir()
    try:
        names = os.listdir(where)
    except FileNotFoundError:
        return []
    return sorted(n[: -len(SUFFIX)] for n in names if n.endswith(SUFFIX) and _KEY_ID.match(n[: -len(SUFFIX)]))


def load(key_id: str, directory: Path | None = None) -> LinkKey:
    where = directory or keys_dir()
    if not _KEY_ID.match(key_id):
        raise LinkKeyMissing(f"link key {key_id!r} is not a key id")
    path = where / f"{key_id}{SUFFIX}"
    try:
        if path.stat().st_mode & 0o077:  # someone loosened it: the key is for this user alone
            path.chmod(0o600)
        secret = path.read_bytes()
    except FileNotFoundError:
        raise LinkKeyMissing(f"link key {key_id} is not in {where}") from None
    if len(secret) != KEY_BYTES:
        raise LinkKeyMissing(f"{path} is not a {KEY_BYTES}-byte link key")
    return LinkKey(key_id, secret)


def _make(directory: Path, now: datetime) -> LinkKey:
    """A new key file, written whole under a draft name and then linked in: nobody ever reads
    half a key."""
    key_id = f"{now:%Y%m%dT%H%M%S%f}Z-{secrets.token_hex(4)}"
    secret = secrets.token_bytes(KEY_BYTES)
    draft = directory / f".{key_id}.{os.getpid()}.draft"
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(secret)
            out.flush()
            os.fsync(out.fileno())
        os.link(draft, directory / f"{key_id}{SUFFIX}")
    finally:
        draft.unlink(missing_ok=True)
    return LinkKey(key_id, secret)


def current_key(directory: Path | None = None) -> LinkKey:
    """The newest key, which new links are derived from; made on first use."""
    where = directory or keys_dir()
    ids = key_ids(where)
    if not ids:
        with locked(where):
            ids = key_ids(where)
            if not ids:
                return _make(where, datetime.now(UTC))
    return load(ids[-1], where)


def rotate(directory: Path | None = None, now: datetime | None = None) -> LinkKey:
    """Make a new current key. Links already issued keep working (checked by hash); mails not
    sent yet are still derived from their own key, which is kept until they are sent."""
    where = directory or keys_dir()
    with locked(where):
        return _make(where, now or datetime.now(UTC))


def rotate_if_due(every: timedelta, directory: Path | None = None, now: datetime | None = None) -> bool:
    """Rotate when the current key is older than ``every`` (0: never). True if it rotated."""
    if every <= timedelta(0):
        return False
    where = directory or keys_dir()
    at = now or datetime.now(UTC)
    if at - current_key(where).made_at < every:
        return False
    with locked(where):
        ids = key_ids(where)
        if ids and at - made_at(ids[-1]) < every:  # another process rotated meanwhile
            return False
        _make(where, at)
    return True


def _erase(path: Path) -> None:
    """Overwrite the key's bytes before unlinking (best effort: on a copy-on-write or
    journalled-data file system old blocks may survive; the key directory belongs on a
    file system that overwrites in place, or in memory)."""
    with contextlib.suppress(FileNotFoundError):
        with open(path, "r+b") as out:
            out.write(b"\0" * KEY_BYTES)
            out.flush()
            os.fsync(out.fileno())
        path.unlink()


def prune(needed: set[str], directory: Path | None = None, now: datetime | None = None) -> list[str]:
    """Delete every key superseded for at least :data:`GRACE` that no unsent mail needs;
    returns the ids deleted. The current key is never deleted."""
    where = directory or keys_dir()
    at = now or datetime.now(UTC)
    deleted: list[str] = []
    with locked(where):
        ids = key_ids(where)
        for key_id, successor in zip(ids, ids[1:], strict=False):
            if key_id not in needed and at - made_at(successor) >= GRACE:
                _erase(where / f"{key_id}{SUFFIX}")
                deleted.append(key_id)
    return deleted
