"""Alembic environment: the URL comes from the Config object siteflow.db builds."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

import models
from models.base import Base

_ = models  # every table registered on Base.metadata
config = context.config


def run_migrations() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url
    connectable = create_engine(url, poolclass=pool.NullPool)
    with connectable.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=url.startswith("sqlite"),
        )
        with context.begin_transaction():
            context.run_migrations()


run_migrations()
