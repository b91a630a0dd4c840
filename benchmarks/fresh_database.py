"""A fresh migrated database for one benchmark run (SQLite under a temp home, or a new
PostgreSQL database on a given server, dropped at the end), the settings pointed at it, and the
example support contract the incident benchmarks vary."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def database(backend: str, home: Path, pg_url: str | None) -> Iterator[str]:
    """A fresh migrated database; on PostgreSQL created on the server of `pg_url`, then dropped."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from siteflow.db import engine_for, migrate

    if backend == "sqlite":
        url = f"sqlite:///{home / 'siteflow.db'}"
        migrate(url)
        yield url
        engine_for(url).dispose()
        return
    assert pg_url is not None
    name = f"sf_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    print(f"  [postgresql] fresh database {name} (dropped at the end)")
    try:
        migrate(url)
        yield url
    finally:
        engine_for(url).dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def use_database(home: Path, url: str) -> None:
    from siteflow.settings import reset_settings

    os.environ["SITEFLOW_HOME"] = str(home)
    os.environ["SITEFLOW_DATABASE_URL"] = url
    os.environ.pop("SITEFLOW_BLACKOUT_CALENDAR", None)
    reset_settings()


def example_contract(**changes: Any) -> Any:
    """`examples/incident-contract.yaml` (critical: response 30 min, 24×7; major and minor on
    weekday business hours) with some of its terms replaced."""
    import yaml

    from models.incident_contract import ContractIn

    path = Path(__file__).resolve().parent.parent / "examples" / "incident-contract.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    return ContractIn.model_validate({**raw, **changes})
