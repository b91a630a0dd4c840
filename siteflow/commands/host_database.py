"""The host's own database, migrated before a host-admin command works on it directly
(`users …`, `incidents contract`, `report incidents`, `audit`): the first command on a fresh
machine finds a database at head, without `siteflow up` having run."""

from __future__ import annotations


def ready_db() -> None:
    from siteflow.db import migrate

    migrate()
