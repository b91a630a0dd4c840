"""The embedded Prefect server, with SQLite writes that queue instead of failing (issue #10, item 5)
and text Prefect cannot store refused at its door (:mod:`siteflow.prefect_body_guard`, item 1).

    python -m siteflow.prefect_server --host 127.0.0.1 --port 4200   (what `siteflow up` runs)

Under load (several projects, a window and the demos on 2 cores) resumes pressed in the Prefect
UI answered 503 "database is locked", though Prefect sets ``busy_timeout`` to 60 s. Waiting is
not what fails: Prefect opens its write transactions on SQLite as ``BEGIN DEFERRED`` (only
``with_for_update`` ones as ``IMMEDIATE``, server/database/configurations.py). A deferred
transaction reads first and asks for the write lock later; if another connection wrote in
between, SQLite refuses the upgrade at once with ``SQLITE_BUSY_SNAPSHOT`` — no busy handler, no
retry — and Prefect maps that to 503. ``PREFECT_SERVER_DATABASE_TIMEOUT`` and the connection
timeout only set how long a lock is waited for, so they do not help. Here every transaction
Prefect begins takes the write lock up front (``BEGIN IMMEDIATE``): writers queue on the busy
timeout, as siteflow's own tables already do (siteflow/db.py). Reads outside transactions are
unchanged. Prefect's public hook for this is ``MODELS_DEPENDENCIES["database_config"]``.
``benchmarks/prefect_load.py`` measures both.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Any

from prefect.server.database.configurations import AioSqliteConfiguration
from sqlalchemy.ext.asyncio import AsyncSession, AsyncSessionTransaction


class QueuedSqliteConfiguration(AioSqliteConfiguration):
    """Prefect's SQLite configuration, with every transaction begun IMMEDIATE."""

    @asynccontextmanager
    async def begin_transaction(
        self, session: AsyncSession, with_for_update: bool = False
    ) -> AsyncGenerator[AsyncSessionTransaction, None]:
        async with super().begin_transaction(session, with_for_update=True) as transaction:
            yield transaction


def install() -> None:
    """Make this process's Prefect server use both (before the server is created)."""
    from prefect.server.database.dependencies import MODELS_DEPENDENCIES
    from prefect.settings import PREFECT_API_DATABASE_CONNECTION_URL

    url = PREFECT_API_DATABASE_CONNECTION_URL.value()
    if url.startswith("sqlite"):
        MODELS_DEPENDENCIES["database_config"] = QueuedSqliteConfiguration(connection_url=url)
    _guard_the_app()


def _guard_the_app() -> None:
    """`prefect server start` (one worker, in the foreground) builds its app by calling
    ``prefect.server.api.server.create_app`` at start; the app it gets is wrapped here."""
    import prefect.server.api.server as server

    from siteflow.prefect_body_guard import UnstorableTextGuard

    build = server.create_app
    if getattr(build, "siteflow_guarded", False):
        return

    def create_app(*args: Any, **kwargs: Any) -> Any:
        return UnstorableTextGuard(build(*args, **kwargs))

    create_app.siteflow_guarded = True  # type: ignore[attr-defined]
    server.create_app = create_app


def main() -> None:
    from prefect.cli import app

    args = sys.argv[1:]
    if any(a in ("--background", "-b") or a.startswith("--workers") for a in args):
        raise SystemExit(  # the guard and the queued writes are installed in this process only
            "siteflow.prefect_server runs Prefect's server in the foreground with one worker; "
            "--background and --workers would start it without siteflow's guards"
        )
    install()
    sys.argv = ["prefect", "server", "start", *args]
    app()


if __name__ == "__main__":
    main()
