"""Group commit: the writes of many threads of one process in one transaction, one fsync.

Why: a window's run upgrades up to 64 elements at once, each in its own thread, and the step
journal must commit a row before each command it sends (UPG-5). On SQLite every commit is
an fsync (~3 ms on this machine) under the database's one write lock, and threads waiting
for that lock sleep in SQLite's busy handler, so the lock sits idle between them: 64
elements' commits queued one behind the other, whatever the elements did. Here the threads
that want to commit at the same moment share one transaction instead — each still returns
only once its own writes are committed, so nothing is promised before it is durable.

How: the first caller leads. It takes every write queued so far, runs each in a savepoint of
one transaction (a write that fails is undone alone and its error raised in its own
caller), commits, and wakes the callers; if more arrived meanwhile, the first of them leads
the next round. No thread of its own, nothing to start or stop.

A write must not itself call :func:`commit_together` (it runs on the leader's thread, inside
the shared transaction).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from sqlalchemy.orm import Session

from siteflow.db import session_scope

T = TypeVar("T")


@dataclass
class _Write:
    work: Callable[[Session], Any]
    woken: threading.Event = field(default_factory=threading.Event)
    done: bool = False
    value: Any = None
    error: BaseException | None = None


_lock = threading.Lock()
_queue: list[_Write] = []
_leading = False


def commit_together(work: Callable[[Session], T]) -> T:
    """Run `work(session)` in a transaction shared with the writes other threads of this
    process ask for at the same time; return its value once the transaction is committed."""
    global _leading
    write = _Write(work)
    with _lock:
        _queue.append(write)
        lead = not _leading
        _leading = True
    if not lead:
        write.woken.wait()
    if not write.done:  # first to arrive, or handed the lead by the round before
        _lead()
    if write.error is not None:
        raise write.error
    return cast(T, write.value)


def _lead() -> None:
    global _leading
    with _lock:
        batch = list(_queue)
        _queue.clear()
    try:
        _commit(batch)
    finally:
        with _lock:
            after = _queue[0] if _queue else None
            _leading = after is not None
        for write in batch:
            write.done = True
            write.woken.set()
        if after is not None:
            after.woken.set()  # not done: it leads the next round


def _commit(batch: list[_Write]) -> None:
    try:
        with session_scope() as session:
            for write in batch:
                try:
                    with session.begin_nested():
                        write.value = write.work(session)
                except Exception as exc:  # undone alone; raised in its caller
                    write.error, write.value = exc, None
    except Exception as exc:  # the transaction itself: nobody's writes were committed
        for write in batch:
            if write.error is None:
                write.error, write.value = exc, None
