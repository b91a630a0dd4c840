"""A directory of secret key files (audit signing keys, link keys) kept outside the database.

Several processes make and rotate keys in one directory (the flows, the keeper, the web, the
relay on the embedded default; every host at scale sharing one mounted secret): each change is
made under one exclusive lock on a lock file there, so two processes never make a key each.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Hold the directory's lock (made 0700 with the directory when missing)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(directory / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
