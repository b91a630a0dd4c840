"""The embedded Prefect server's transactions take SQLite's write lock when they begin
(issue #10, item 5): a transaction Prefect begins DEFERRED reads first and may be refused the
lock later, at once ("database is locked", 503); one begun IMMEDIATE waits its turn instead.
``benchmarks/prefect_load.py`` measures what that changes under load; this checks the switch,
on a real SQLite file through Prefect's own configuration class."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

from prefect.server.database.configurations import AioSqliteConfiguration
from sqlalchemy import text

from siteflow.prefect_server import QueuedSqliteConfiguration


def another_writer_gets_the_lock(config_class: type[AioSqliteConfiguration], path: Path) -> bool:
    """While a transaction begun by `config_class` has only read, may another connection write?"""
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    other.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER)")

    async def probe() -> bool:
        config = config_class(connection_url=f"sqlite+aiosqlite:///{path}")
        engine = await config.engine()
        try:
            session = await config.session(engine)
            async with session, config.begin_transaction(session):
                await session.execute(text("SELECT count(*) FROM t"))
                try:
                    other.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError:
                    return False
                other.execute("ROLLBACK")
                return True
        finally:
            await engine.dispose()

    try:
        return asyncio.run(probe())
    finally:
        other.close()


def test_prefects_own_transactions_leave_the_lock_to_be_taken(tmp_path: Path) -> None:
    assert another_writer_gets_the_lock(AioSqliteConfiguration, tmp_path / "stock.db")


def test_siteflows_prefect_server_takes_the_write_lock_up_front(tmp_path: Path) -> None:
    assert not another_writer_gets_the_lock(QueuedSqliteConfiguration, tmp_path / "queued.db")


def test_the_body_guard_names_what_prefect_cannot_store_and_where() -> None:
    """Issue #10 item 1: a lone surrogate or a NUL anywhere in a JSON write is named with its
    place; clean bodies (nearly all requests), bodies that are not JSON, and a backslash
    written before "u0000" as text pass untouched."""
    from siteflow.prefect_body_guard import problem

    def as_sent(payload: object) -> bytes:
        return json.dumps(payload).encode("ascii")  # how clients escape non-ASCII text

    surrogate = as_sent({"parameters": {"project": {"contacts": [{"name": "ok"}, {"name": "x\ud800"}]}}})
    assert problem(surrogate) == "a lone UTF-16 surrogate (U+D800) at parameters.project.contacts.1.name"
    assert problem(as_sent({"name": "A\x00B"})) == "a NUL character (U+0000) at name"
    assert problem(as_sent({"tags": {"\udfff": 1}})) == "a lone UTF-16 surrogate (U+DFFF) in a key under tags"
    assert problem(as_sent(["\ud800"])) == "a lone UTF-16 surrogate (U+D800) at 0"
    assert problem(as_sent({"name": "广州 😀 \\u0000 as text", "n": [1, None, True]})) is None
    assert problem(b"not json") is None
    assert problem('{"name": "广州"}'.encode()) is None


def test_the_body_guard_reads_split_and_differently_encoded_bodies() -> None:
    """The ASGI wrapper itself: a body split over several messages is read whole; UTF-8 with a
    byte-order mark and UTF-16 (both accepted by ``json.loads``, as by Prefect's framework) are
    checked like plain UTF-8; a clean body reaches the app unchanged, in one message."""
    from siteflow.prefect_body_guard import UnstorableTextGuard

    seen: list[bytes] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        message = await receive()
        seen.append(message["body"])
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def post(*chunks: bytes) -> int:
        pending = [
            {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
            for i, c in enumerate(chunks)
        ]
        statuses: list[int] = []

        async def receive() -> Any:
            return pending.pop(0) if pending else {"type": "http.disconnect"}

        async def send(message: Any) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        scope = {"type": "http", "method": "POST", "path": "/api/flow_runs/"}
        asyncio.run(UnstorableTextGuard(app)(scope, receive, send))
        return statuses[0]

    bad = json.dumps({"name": "x\ud800"})
    assert post(bad[:7].encode(), bad[7:].encode()) == 422  # split inside the escape
    assert post(b"\xef\xbb\xbf" + bad.encode()) == 422  # UTF-8 with a byte-order mark
    assert post(bad.encode("utf-16-le", "surrogatepass")) == 422
    assert post(json.dumps({"name": "A\x00B"}, ensure_ascii=False).encode("utf-16")) == 422
    assert post(b"[" * 100_000) == 201  # too deep for Python's parser: Prefect's to refuse
    clean = json.dumps({"name": "广州 ok"}).encode()
    assert post(clean[:5], clean[5:]) == 201 and seen[-1] == clean
