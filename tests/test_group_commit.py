"""Group commit (siteflow.group_commit): threads share transactions, each write stays its own.

Real SQLite and PostgreSQL; many threads at once, as a window's run writes its journal.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session


def _window(window_id: str) -> None:
    from datetime import UTC, date, datetime

    from models.upgrade import UpgradeWindow
    from siteflow.db import session_scope

    now = datetime.now(UTC)
    with session_scope() as session:
        session.add(
            UpgradeWindow(
                id=window_id,
                title="t",
                timezone="UTC",
                local_date=date.today(),
                starts_at=now,
                deadline=now,
                params={},
            )
        )


def _entry(window_id: str, item: str) -> object:
    from models.upgrade import JournalEntry

    return JournalEntry(window_id=window_id, element="E", stage="upgrade", item=item, title=item, operator="o")


def test_every_write_is_committed_and_a_failing_one_is_undone_alone(database_url: str) -> None:
    from models.upgrade import JournalEntry
    from siteflow.db import session_scope
    from siteflow.group_commit import commit_together

    _window("GC-1")
    start = threading.Barrier(24)

    def write(i: int) -> str:
        def work(session: Session) -> str:
            session.add(_entry("GC-1", f"item-{i}"))
            session.flush()
            if i % 8 == 7:
                raise ValueError(f"write {i} refused")
            return f"item-{i}"

        start.wait()
        return commit_together(work)

    with ThreadPoolExecutor(max_workers=24) as pool:
        futures = [pool.submit(write, i) for i in range(24)]
    values, errors = [], []
    for f in futures:
        try:
            values.append(f.result())
        except ValueError as exc:
            errors.append(str(exc))
    assert sorted(errors) == sorted(f"write {i} refused" for i in (7, 15, 23))
    with session_scope() as session:
        items = set(session.execute(select(JournalEntry.item).where(JournalEntry.window_id == "GC-1")).scalars())
    assert items == set(values) and len(items) == 21


def test_a_clash_in_one_write_leaves_the_others_committed(database_url: str) -> None:
    from sqlalchemy.exc import IntegrityError

    from models.upgrade import JournalEntry
    from siteflow.db import session_scope
    from siteflow.group_commit import commit_together

    _window("GC-2")
    commit_together(lambda s: s.add(_entry("GC-2", "taken")))

    def write(item: str) -> None:
        def work(session: Session) -> None:
            session.add(_entry("GC-2", item))
            session.flush()

        commit_together(work)

    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(write, "taken" if i == 3 else f"new-{i}") for i in range(8)]
    with pytest.raises(IntegrityError):
        futures[3].result()
    for i, f in enumerate(futures):
        if i != 3:
            f.result()
    with session_scope() as session:
        count = session.scalar(select(func.count()).where(JournalEntry.window_id == "GC-2"))
    assert count == 8
