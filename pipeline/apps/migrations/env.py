"""Alembic environment for the case store.

`pipeline.store.upgrade` runs the migrations on a connection it has already
opened (and locked: BEGIN IMMEDIATE on SQLite, an advisory lock on
PostgreSQL), passed in `config.attributes["connection"]`. Run by hand,
`alembic -c pipeline/migrations/alembic.ini upgrade head` uses
$TOUSU_DATABASE_URL.
"""
from __future__ import annotations

import os

from alembic import context

from pipeline.apps.store import Base

config = context.config
target_metadata = Base.metadata


def _configure_and_run(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection)
        return
    from pipeline.apps.store import default_url, make_engine

    engine = make_engine(os.environ.get("TOUSU_DATABASE_URL") or config.get_main_option("sqlalchemy.url") or default_url())
    with engine.connect() as conn:
        _configure_and_run(conn)


def run_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
