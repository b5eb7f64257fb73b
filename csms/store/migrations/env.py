"""Alembic environment for the CSMS store.

Normally run through :class:`csms.store.database.Database`, which hands over its own connection
in ``config.attributes["connection"]``. Without one (the ``alembic`` command line), an async
engine is created from the ``sqlalchemy.url`` option; ``--sql`` (offline) mode is supported.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import Connection, pool

from csms.store.database import WRITE_OPTIONS, Database
from csms.store.models import Base
from csms.store.types import StationText, UTCDateTime

config = context.config
target_metadata = Base.metadata


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Render the store's column types as plain SQLAlchemy types in new migrations."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if type_ == "type" and isinstance(obj, StationText):
        return "sa.Text()"
    return False


def _configure(**options: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        render_item=render_item,
        **options,
    )


def run_migrations_offline() -> None:
    """Emit SQL to stdout instead of running it."""
    _configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    """Run the migrations on a synchronous connection (the caller's, when it gave one)."""
    _configure(
        connection=connection,
        # SQLite cannot ALTER most things: later migrations use batch (copy-and-move) mode.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations(url: str) -> None:
    """Use a throwaway :class:`Database` (SQLite pragmas included) for the command line."""
    database = Database(url, poolclass=pool.NullPool)
    async with database, database.engine.connect() as connection:
        await connection.execution_options(**WRITE_OPTIONS)
        async with connection.begin():
            await connection.run_sync(do_run_migrations)


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection given and no sqlalchemy.url configured")
    asyncio.run(run_async_migrations(url))


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
