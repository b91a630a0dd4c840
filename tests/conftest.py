"""Shared fixtures: real databases and real siteflow stacks, started once per session.

- ``database_url``: a fresh, migrated database per test, on SQLite and on PostgreSQL
  (``SITEFLOW_TEST_PG_URL``, default the machine's server on 127.0.0.1:5432).
- ``stack_factory``: a real embedded stack (Prefect server, served deployments, gate keeper,
  web service, SMTP catcher) per backend, started once and shared by the session.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from siteflow.settings import Settings, reset_settings

PG_ADMIN_URL = os.environ.get("SITEFLOW_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
BACKENDS = ["sqlite", "postgresql"]


_TEMPLATE: dict[str, str] = {}


def _pg_url(name: str) -> str:
    return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def _create_pg_database(template: str | None = None) -> str:
    name = f"sf_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
    admin.dispose()
    return _pg_url(name)


def _migrated_pg_database() -> str:
    """Copy a database migrated once per session (migrating each one costs ~1 s)."""
    from siteflow.db import engine_for, migrate

    if "name" not in _TEMPLATE:
        url = _create_pg_database()
        migrate(url)
        engine_for(url).dispose()
        _TEMPLATE["name"] = make_url(url).database or ""
        _TEMPLATE["url"] = url
    return _create_pg_database(template=_TEMPLATE["name"])


def _drop_pg_database(url: str) -> None:
    from siteflow.db import engine_for

    engine_for(url).dispose()
    name = make_url(url).database
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def new_database(backend: str, directory: Path) -> str:
    from siteflow.db import migrate

    if backend == "postgresql":
        return _migrated_pg_database()
    url = f"sqlite:///{directory / 'siteflow.db'}"
    migrate(url)
    return url


@contextmanager
def using(settings: Settings) -> Iterator[None]:
    """Point this process (siteflow settings and Prefect's client) at one stack/database."""
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    from siteflow.prefect_credential import prefect_auth_string
    from siteflow.prefect_env import prefect_environment

    keys = {k: v for k, v in prefect_environment(settings).items() if k.startswith("SITEFLOW_")}
    keys |= {"SITEFLOW_HOME": str(settings.home), "SITEFLOW_DATABASE_URL": settings.resolved_database_url}
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update(keys)
    reset_settings()
    try:
        with temporary_settings(
            {
                PREFECT_API_URL: settings.resolved_prefect_api_url,
                PREFECT_API_AUTH_STRING: prefect_auth_string(settings),  # Prefect's API wants it
            }
        ):
            yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        reset_settings()


@pytest.fixture(scope="session", autouse=True)
def _drop_pg_template() -> Iterator[None]:
    yield
    if "url" in _TEMPLATE:
        _drop_pg_database(_TEMPLATE["url"])
        _TEMPLATE.clear()


SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
"""For tests of the web and CLI layers: what they store goes through the same decision path and
tables that the database tests run on both backends, so one backend keeps the suite short."""


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh migrated database, once on SQLite and once on PostgreSQL."""
    url = new_database(request.param, tmp_path)
    settings = Settings(home=tmp_path, database_url=url)
    with using(settings):
        yield url
    if request.param == "postgresql":
        _drop_pg_database(url)


class StackHandle:
    def __init__(self, stack: object, settings: Settings) -> None:
        self.stack = stack
        self.settings = settings

    @contextmanager
    def active(self) -> Iterator[None]:
        with using(self.settings):
            yield


@pytest.fixture(scope="session")
def stack_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Start (once per session and backend) a real siteflow stack; stop them all at the end."""
    from siteflow.stack import Stack

    started: dict[str, StackHandle] = {}
    databases: list[str] = []

    def get(backend: str, name: str = "", **overrides: Any) -> StackHandle:
        """One stack per (backend, name); a name gives a test a stack of its own (with
        settings overridden, e.g. a compressed simulator time)."""
        key = f"{backend}-{name}" if name else backend
        if key in started:
            return started[key]
        home = tmp_path_factory.mktemp(f"stack-{key}")
        offset = len(started) + int(os.environ.get("SITEFLOW_TEST_PORT_OFFSET", "0"))  # parallel suites
        url = new_database(backend, home)
        if backend == "postgresql":
            databases.append(url)
        settings = Settings(
            home=home,
            database_url=url,
            prefect_port=4310 + offset,
            web_port=8410 + offset,
            smtp_port=8310 + offset,
            **overrides,
        )
        stack = Stack(settings, say=lambda m: None)
        try:
            stack.start()
        except Exception:
            stack.stop()
            raise
        started[key] = StackHandle(stack, settings)
        return started[key]

    yield get
    for handle in started.values():
        handle.stack.stop()  # type: ignore[attr-defined]
    for url in databases:
        _drop_pg_database(url)
