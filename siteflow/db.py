"""Engine, sessions and migrations for siteflow's own tables.

SQLite is the embedded default: WAL mode, a busy timeout and ``BEGIN IMMEDIATE`` make
concurrent writers (served flow runs, the CLI, the web service) queue instead of failing.
PostgreSQL is used when ``SITEFLOW_DATABASE_URL`` points at it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from siteflow.settings import get_settings
from siteflow.sqlite_erasure import overwrite_freed_space

if TYPE_CHECKING:
    from alembic.config import Config

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
            overwrite_freed_space(dbapi_conn)  # an erased token is gone from the file (issue #10)

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
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url or get_settings().resolved_database_url)
    return cfg


def migrate(url: str | None = None) -> None:
    """Bring the schema to the newest migration (idempotent; run at every start).

    Every CLI command calls this, and loading Alembic and running its environment (which
    imports every model) is a large share of a command's start; a database already at the
    head (the usual case) is recognised from its ``alembic_version`` rows and the migration
    files alone, and Alembic is not loaded at all. Anything else takes Alembic's own path.
    """
    url = url or get_settings().resolved_database_url
    heads = script_heads()
    if heads is not None and database_revisions(url) == heads:
        return
    from alembic import command

    command.upgrade(alembic_config(url), "head")


def script_heads() -> set[str] | None:
    """The head revisions of the migration files, read as Alembic reads them (revision and
    down_revision), or None when a file does not declare them as plain literals."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        found = _revision_literals(path)
        if found is None:
            return None
        revision, down = found
        revisions.add(revision)
        parents.update(down)
    return (revisions - parents) or None


def _revision_literals(path: Path) -> tuple[str, set[str]] | None:
    """``revision`` and ``down_revision`` of one migration file, without importing it."""
    values: dict[str, Any] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        name, value = _assignment(node)
        if name in ("revision", "down_revision") and value is not None:
            try:
                values[name] = ast.literal_eval(value)
            except (ValueError, TypeError, SyntaxError):
                return None
    revision, down = values.get("revision"), values.get("down_revision", ...)
    if not isinstance(revision, str):
        return None
    if down is None or isinstance(down, str):
        return revision, {down} if down else set()
    if isinstance(down, tuple | list) and all(isinstance(d, str) for d in down):
        return revision, set(down)
    return None  # missing, or not a revision id: let Alembic read the file


def _assignment(node: ast.stmt) -> tuple[str | None, ast.expr | None]:
    """Name and value of a top-level ``name = …`` statement; (None, None) for anything else."""
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        return node.targets[0].id, node.value
    return None, None


def database_revisions(url: str) -> set[str] | None:
    """The revisions recorded in the database, or None if it has none (new, or not readable).

    Read on a plain DBAPI connection: a SQLAlchemy transaction would start SQLite's
    ``BEGIN IMMEDIATE`` (see :func:`engine_for`) and queue this read behind every writer.
    """
    raw = engine_for(url).raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("SELECT version_num FROM alembic_version")
        return {str(row[0]) for row in cursor.fetchall()}
    except Exception:  # no table yet, or anything else: the full migration path deals with it
        return None
    finally:
        raw.close()
