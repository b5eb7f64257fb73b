"""The database connection: engine, sessions, migrations.

SQLite (``sqlite+aiosqlite:///path``) runs in WAL mode with foreign keys on and a busy timeout;
SQLAlchemy emits ``BEGIN`` itself (the sqlite3 driver's legacy transaction handling is
switched off), and the store's write transactions begin with ``BEGIN IMMEDIATE`` so that
concurrent writers queue on the busy timeout instead of failing with "database is locked".

PostgreSQL (``postgresql+asyncpg://...``) gets a recycled connection pool whose connections are
pinged before use when they sat idle (a ping is three round trips with asyncpg: pinging every
checkout doubled the cost of a busy node's group commits).

Migrations are Alembic's, configured in code (no ``alembic.ini``), so they run from an
installed package; :meth:`Database.upgrade` runs them on the engine's own connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

SQLITE_BUSY_TIMEOUT_MS = 30_000
"""How long a SQLite writer waits for another one before failing."""

_SQLITE_BEGIN_OPTION = "csms_sqlite_begin"
"""Execution option naming the ``BEGIN`` variant our SQLite ``begin`` hook emits."""

WRITE_OPTIONS: dict[str, Any] = {_SQLITE_BEGIN_OPTION: "BEGIN IMMEDIATE"}
"""Execution options for a transaction that will write (only SQLite looks at them)."""

_MIGRATION_LOCK_KEY = 0x6373_6D73_0001
"""PostgreSQL advisory lock held while migrating ("csms" + 1)."""

_POSTGRES_POOL: dict[str, Any] = {
    "pool_size": 10,
    "max_overflow": 10,
    "pool_timeout": 30,
    "pool_recycle": 1800,
}

IDLE_PING_SECONDS = 2.0
"""A pooled PostgreSQL connection idle for longer is pinged before use (a restarted server
or a dropped link is then found before a statement fails); a busier one was just proven."""


def ping_idle_connections(engine: AsyncEngine, idle: float | None = None) -> None:
    """Pessimistic disconnect handling for connections idle longer than ``idle`` seconds.

    SQLAlchemy's ``pool_pre_ping`` pings at every checkout. A connection that fails its ping
    is discarded (``DisconnectionError``) and the pool tries another or a new one, as with
    ``pool_pre_ping``; a statement that then fails on a dead connection invalidates the pool.
    """
    pool = engine.sync_engine.pool
    idle_for = IDLE_PING_SECONDS if idle is None else idle

    @event.listens_for(pool, "checkin")
    def _checked_in(dbapi_connection: DBAPIConnection | None,
                    record: ConnectionPoolEntry) -> None:
        record.info["csms_idle_since"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _checked_out(dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry,
                     proxy: Any) -> None:
        since = record.info.get("csms_idle_since")
        if since is None or time.monotonic() - since < idle_for:
            return  # new (just connected) or busy
        try:
            dbapi_connection.ping()
        except Exception as exc:
            raise DisconnectionError(f"idle connection failed its ping: {exc!r}") from exc


def alembic_config(url: str | URL | None = None) -> Config:
    """An Alembic configuration for the packaged migrations (no ini file needed).

    ``url`` is only needed by the ``alembic`` command line way of running env.py; the
    :class:`Database` methods pass their connection instead.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        rendered = make_url(url).render_as_string(hide_password=False)
        config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return config


def head_revision() -> str:
    """The newest migration revision."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package ships migrations
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


class Database:
    """One database: an async engine and a session factory (``expire_on_commit=False``)."""

    def __init__(self, url: str | URL, *, echo: bool = False, **engine_options: Any) -> None:
        """Create the engine (no connection is made yet).

        ``engine_options`` go to :func:`~sqlalchemy.ext.asyncio.create_async_engine` and win
        over the defaults (pool sizes for PostgreSQL, for instance).
        """
        self.url: URL = make_url(url)
        options: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            _create_sqlite_parent(self.url)
        elif self.url.get_backend_name() == "postgresql":
            if "poolclass" not in engine_options:  # NullPool & co. take no sizes
                options.update(_POSTGRES_POOL)
            options["connect_args"] = {"server_settings": {"application_name": "csms"}}
        options.update(engine_options)
        self.engine: AsyncEngine = create_async_engine(self.url, **options)
        if self.is_sqlite:
            _configure_sqlite(self.engine)
        elif self.url.get_backend_name() == "postgresql" and "poolclass" not in engine_options:
            ping_idle_connections(self.engine)
        self.sessionmaker: async_sessionmaker[AsyncSession] = async_sessionmaker(
            self.engine, expire_on_commit=False
        )
        self._write_lock = asyncio.Lock() if self.is_sqlite else None

    @property
    def is_sqlite(self) -> bool:
        """True for SQLite, whose locking needs ``BEGIN IMMEDIATE`` for writes."""
        return self.url.get_backend_name() == "sqlite"

    @property
    def dialect_name(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.url.get_backend_name()

    def __repr__(self) -> str:
        return f"Database({self.url.render_as_string(hide_password=True)!r})"

    @asynccontextmanager
    async def write_session(self) -> AsyncIterator[AsyncSession]:
        """A session in one write transaction, committed on success, rolled back on error.

        On SQLite, which has one writer at a time anyway, writers of this process queue on an
        asyncio lock rather than polling the file lock (the busy timeout still covers other
        processes, such as a ``csms`` command run beside the server). Do not nest write
        sessions: the lock is not reentrant.
        """
        async with AsyncExitStack() as stack:
            if self._write_lock is not None:
                await stack.enter_async_context(self._write_lock)
            session = await stack.enter_async_context(self.sessionmaker())
            await stack.enter_async_context(session.begin())
            await session.connection(execution_options=WRITE_OPTIONS)
            yield session

    @asynccontextmanager
    async def read_session(self) -> AsyncIterator[AsyncSession]:
        """A session for reads (a plain deferred transaction, ended on exit)."""
        async with self.sessionmaker() as session:
            yield session

    async def upgrade(self, revision: str = "head") -> None:
        """Apply the migrations up to ``revision`` on this engine's own connection.

        One transaction (DDL is transactional on both databases). Nodes starting together
        take turns: SQLite's ``BEGIN IMMEDIATE``, a PostgreSQL advisory lock.
        """
        await self._migrate(command.upgrade, revision)

    async def downgrade(self, revision: str) -> None:
        """Revert the migrations down to ``revision`` (``"base"`` drops every table)."""
        await self._migrate(command.downgrade, revision)

    async def _migrate(self, function: Callable[[Config, str], None], revision: str) -> None:
        if self.is_sqlite:
            await self._use_wal()
        async with self.engine.connect() as connection:
            await connection.execution_options(**WRITE_OPTIONS)
            async with connection.begin():
                if self.dialect_name == "postgresql":
                    await connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
                    )
                await connection.run_sync(_run_command, function, revision)

    async def _use_wal(self) -> None:
        """Switch a SQLite file to WAL, retrying while other connections hold it."""
        async with self.engine.connect() as connection:
            raw = await connection.get_raw_connection()
            driver = raw.driver_connection  # aiosqlite: outside any transaction
            assert driver is not None
            for attempt in itertools.count(1):
                try:
                    cursor = await driver.execute("PRAGMA journal_mode = WAL")
                    await cursor.close()
                    return
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or attempt * 0.05 > SQLITE_BUSY_TIMEOUT_MS / 1000:
                        raise
                    await asyncio.sleep(0.05)

    async def current_revision(self) -> str | None:
        """The revision the database is at, ``None`` when no migration was applied."""
        async with self.engine.connect() as connection:
            return await connection.run_sync(_current_revision)

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.dispose()


async def upgrade(url: str | URL, revision: str = "head") -> str | None:
    """Migrate the database at ``url`` and return its revision (for ``csms db upgrade``)."""
    async with Database(url) as database:
        await database.upgrade(revision)
        return await database.current_revision()


def _run_command(
    connection: Connection, function: Callable[[Config, str], None], revision: str
) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    function(config, revision)


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _create_sqlite_parent(url: URL) -> None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy emit BEGIN (below) instead of the driver's legacy handling, which
        # skips it before SELECT and DDL.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA journal_mode")
            row = cursor.fetchone()
            if row is not None and str(row[0]).lower() not in ("wal", "memory"):
                # WAL is a property of the file, set once: normally by upgrade(), which
                # retries; here best effort (switching fails at once, busy timeout or not,
                # while another connection is using the file).
                with contextlib.suppress(sqlite3.OperationalError):
                    cursor.execute("PRAGMA journal_mode = WAL")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        begin = connection.get_execution_options().get(_SQLITE_BEGIN_OPTION, "BEGIN")
        connection.exec_driver_sql(begin)


__all__ = [
    "MIGRATIONS_DIR",
    "Database",
    "alembic_config",
    "head_revision",
    "upgrade",
]
