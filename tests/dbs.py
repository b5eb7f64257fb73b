"""Database helpers of the test suite: throwaway PostgreSQL databases, table cleanup.

PostgreSQL is the real server named by ``CSMS_TEST_POSTGRES_URL`` (default
``postgresql+asyncpg://postgres@127.0.0.1:5432/test``); that database is only used to issue
``CREATE DATABASE`` / ``DROP DATABASE`` for uniquely named throwaway databases
(``csms_test_<host>_<pid>_<random>``), which are dropped when the session ends; those of
killed runs on this host are dropped when the next session starts.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy import NullPool, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from csms.store import Base, Database

POSTGRES_URL_ENV = "CSMS_TEST_POSTGRES_URL"
SKIP_POSTGRES_ENV = "CSMS_TEST_SKIP_POSTGRES"
DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
DATABASE_PREFIX = "csms_test_"
CONNECT_TIMEOUT = 5.0

T = TypeVar("T")

_HOST_TAG = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:6]
"""Names carry the host, so that stale-database cleanup only judges this host's processes."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_in_thread(function: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion on a private event loop in another thread.

    For synchronous (session) fixtures: the test's own loop is never touched.
    """

    async def main() -> T:
        return await function()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, main()).result()


def skip_postgres() -> bool:
    """True when ``CSMS_TEST_SKIP_POSTGRES`` asks to skip rather than fail without a server."""
    return os.environ.get(SKIP_POSTGRES_ENV, "").strip().lower() in {"1", "true", "yes"}


class PostgresServer:
    """The test PostgreSQL server: creates and drops throwaway databases."""

    def __init__(self, url: str | URL) -> None:
        self.admin_url = make_url(url)
        self.created: list[str] = []

    @classmethod
    def from_environment(cls) -> PostgresServer:
        return cls(os.environ.get(POSTGRES_URL_ENV) or DEFAULT_POSTGRES_URL)

    def describe(self) -> str:
        return self.admin_url.render_as_string(hide_password=True)

    def url_for(self, name: str) -> URL:
        return self.admin_url.set(database=name)

    async def _execute(self, *statements: str) -> None:
        engine = create_async_engine(
            self.admin_url,
            poolclass=NullPool,
            isolation_level="AUTOCOMMIT",
            connect_args={"timeout": CONNECT_TIMEOUT},
        )
        try:
            async with engine.connect() as connection:
                for statement in statements:
                    await connection.exec_driver_sql(statement)
        finally:
            await engine.dispose()

    def check(self) -> None:
        """Connect once; raises if the server is unreachable."""
        run_in_thread(lambda: self._execute("SELECT 1"))

    def drop_stale(self) -> list[str]:
        """Drop the databases left by killed test runs of this host (whose process is gone)."""

        async def names() -> list[str]:
            engine = create_async_engine(
                self.admin_url, poolclass=NullPool, connect_args={"timeout": CONNECT_TIMEOUT}
            )
            try:
                async with engine.connect() as connection:
                    result = await connection.execute(
                        text("SELECT datname FROM pg_database WHERE datname LIKE :pattern"),
                        {"pattern": f"{DATABASE_PREFIX}{_HOST_TAG}_%"},
                    )
                    return [str(name) for name in result.scalars()]
            finally:
                await engine.dispose()

        stale = []
        for name in run_in_thread(names):
            pid = name.removeprefix(f"{DATABASE_PREFIX}{_HOST_TAG}_").split("_")[0]
            if pid.isdigit() and not _alive(int(pid)):
                self.drop_database(self.url_for(name))
                stale.append(name)
        return stale

    def create_database(self) -> URL:
        """Create an empty, uniquely named database and return its URL."""
        name = f"{DATABASE_PREFIX}{_HOST_TAG}_{os.getpid()}_{secrets.token_hex(4)}"
        run_in_thread(lambda: self._execute(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return self.url_for(name)

    def drop_database(self, url: URL) -> None:
        """Drop a database made by :meth:`create_database` (closing its stray connections)."""
        name = url.database
        assert name is not None and name.startswith(DATABASE_PREFIX), name
        run_in_thread(lambda: self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if name in self.created:
            self.created.remove(name)

    def drop_all(self) -> None:
        for name in list(self.created):
            self.drop_database(self.url_for(name))


async def truncate_all(database: Database) -> None:
    """Empty every table of the store (PostgreSQL), restarting the key sequences."""
    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    async with database.engine.begin() as connection:
        # A test that leaked a connection would otherwise hang the next one.
        await connection.exec_driver_sql("SET LOCAL lock_timeout = '10s'")
        await connection.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")


def render(url: URL) -> str:
    """The URL as a string, password included (for ``Database`` or a server subprocess)."""
    return url.render_as_string(hide_password=False)
