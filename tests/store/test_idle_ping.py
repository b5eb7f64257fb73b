"""PostgreSQL pool: a pooled connection that sat idle is pinged before use, so one that the
server dropped meanwhile (a restart, an idle timeout, a firewall) is replaced, not failed on;
a busy one is used without the three round trips of a ping."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from csms.store import Database
from csms.store import database as database_module

pytestmark = pytest.mark.postgres


async def _backend_pid(db: Database) -> int:
    async with db.read_session() as session:
        return int((await session.execute(text("select pg_backend_pid()"))).scalar_one())


async def _terminate(url: str, pid: int) -> None:
    admin = create_async_engine(url, poolclass=NullPool)
    try:
        async with admin.connect() as connection:
            killed = await connection.execute(text("select pg_terminate_backend(:pid)"),
                                              {"pid": pid})
            assert killed.scalar_one()
    finally:
        await admin.dispose()


async def test_idle_connection_dropped_by_the_server_is_replaced(
    postgres_migrated_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database_module, "IDLE_PING_SECONDS", 0.2)
    db = Database(postgres_migrated_url, pool_size=1, max_overflow=0)
    try:
        first = await _backend_pid(db)
        await _terminate(postgres_migrated_url, first)
        await asyncio.sleep(0.3)
        second = await _backend_pid(db)  # the ping failed: a new connection, no error
        assert second != first
    finally:
        await db.engine.dispose()


async def test_busy_connection_is_not_pinged(
    postgres_migrated_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Used within the idle time, a connection is trusted: the server's drop is only seen by
    the next statement (which fails, invalidating the pool); the one after reconnects."""
    monkeypatch.setattr(database_module, "IDLE_PING_SECONDS", 60.0)
    db = Database(postgres_migrated_url, pool_size=1, max_overflow=0)
    try:
        first = await _backend_pid(db)
        await _terminate(postgres_migrated_url, first)
        with pytest.raises(DBAPIError):
            await _backend_pid(db)
        assert await _backend_pid(db) != first
    finally:
        await db.engine.dispose()
