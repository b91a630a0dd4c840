"""Make SQLite forget what siteflow erased (issue #10, item 3).

Link tokens are no longer stored at all (derived under a key outside the database,
:mod:`siteflow.link_keys`: the design that also holds on PostgreSQL, which keeps a nulled value
in the dead tuple until VACUUM). This module stays as defence in depth for whatever else is
erased — and for a pre-upgrade row's random token, kept in ``outbox.secret`` until migration 0018
dropped the column. What was measured when tokens were nulled in place: on SQLite, nulling
alone does not make a value unreadable:

- the old row's bytes stay in the page's free space unless ``secure_delete`` is on (measured:
  15 of 40 nulled tokens still in ``siteflow.db`` after a checkpoint with it off, 0 with it on;
  Debian builds SQLite with it on by default, others do not, so siteflow sets it itself);
- in WAL mode every version of a page written since the last checkpoint stays in
  ``siteflow.db-wal`` — the token too — until the WAL is reset. A ``PASSIVE`` checkpoint
  copies pages back but leaves the file's old frames in place (45 of 50 tokens still there);
  ``wal_checkpoint(TRUNCATE)`` empties the file (0 of 50), but only once no reader still
  holds an older snapshot, so it is tried again until it completes.

"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

SECURE_DELETE = "PRAGMA secure_delete=ON"


def overwrite_freed_space(dbapi_conn: Any) -> None:
    """On every new connection: freed row space is zeroed, not left as it was."""
    cur = dbapi_conn.cursor()
    cur.execute(SECURE_DELETE)
    cur.close()


def truncate_wal(engine: Engine, wait_ms: int = 2000) -> bool:
    """Checkpoint the WAL into the database and empty it; True once it is empty.

    False when a reader or writer kept it (``busy``): nothing is lost, call again later. The
    wait is short so the caller (the relay) is not held up by a busy database.
    """
    if engine.dialect.name != "sqlite":
        return True
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute(f"PRAGMA busy_timeout={int(wait_ms)}")
        try:
            row = cur.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            cur.execute("PRAGMA busy_timeout=30000")  # the pool's connections wait 30 s
            cur.close()
    finally:
        raw.close()
    return row is not None and int(row[0]) == 0
