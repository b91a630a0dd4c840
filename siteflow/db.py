"""Engine, sessions and migrations for siteflow's own tables.

SQLite is the embedded default: WAL mode, a busy timeout and ``BEGIN IMMEDIATE`` make
concurrent writers (served flow runs, the CLI, the web service) queue instead of failing.
PostgreSQL is used when ``SITEFLOW_DATABASE_URL`` points at it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from siteflow.settings import get_settings

MIGRATIONS = Path(__file__).parent / "migrations"


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _: Any) -> None:
            dbapi_conn.isolation_level = None  # let SQLAlchemy's begin event issue BEGIN
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _immediate(conn: Any) -> None:
            read_only = conn.get_execution_options().get(READ_ONLY)
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True)


READ_ONLY = "siteflow_read_only"


def get_engine() -> Engine:
    return engine_for(get_settings().resolved_database_url)


@contextmanager
def session_scope() -> Iterator[Session]:
    """One transaction: committed on success, rolled back on any error."""
    factory = sessionmaker(get_engine(), expire_on_commit=False)
    with factory() as session, session.begin():
        yield session


@contextmanager
def read_scope() -> Iterator[Session]:
    """A read-only transaction. On SQLite it does not take the write lock that
    :func:`session_scope` takes up front (``BEGIN IMMEDIATE``), so a frequent reader — the
    window's decision watcher — never queues a writer behind it."""
    engine = get_engine().execution_options(**{READ_ONLY: True})
    with Session(engine, expire_on_commit=False) as session, session.begin():
        yield session


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url or get_settings().resolved_database_url)
    return cfg


def migrate(url: str | None = None) -> None:
    """Bring the schema to the newest migration (idempotent; run at every start)."""
    command.upgrade(alembic_config(url), "head")
