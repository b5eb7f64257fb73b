"""Shared fixtures.

Databases
---------
Every test that uses ``database`` (or ``store``, ``empty_database_url``) runs twice: on a
SQLite file in ``tmp_path`` and on the real PostgreSQL server (marked ``postgres``; deselect
with ``-m "not postgres"``). PostgreSQL comes from ``CSMS_TEST_POSTGRES_URL`` (default
``postgresql+asyncpg://postgres@127.0.0.1:5432/test``); when it is unreachable those tests
fail, unless ``CSMS_TEST_SKIP_POSTGRES=1`` makes them skip.

- ``database``: a migrated, empty :class:`csms.store.Database`, disposed after the test.
  PostgreSQL: one throwaway database per session, migrated once and truncated before each test.
- ``store``: a :class:`csms.store.Store` on ``database``.
- ``empty_database_url``: URL of a brand-new database with no tables (PostgreSQL: created for
  the test, dropped after it), for migration tests and for starting a server process.
- ``db_backend``: ``"sqlite"`` or ``"postgres"``; override it to run on one backend only::

      @pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from csms.app import CentralSystem
from csms.settings import (
    DatabaseSettings,
    DiagnosticsSettings,
    HttpSettings,
    LoggingSettings,
    OcppSettings,
    Settings,
    UploadSettings,
)
from csms.store import Database, Store
from tests.dbs import (
    SKIP_POSTGRES_ENV,
    PostgresServer,
    render,
    run_in_thread,
    skip_postgres,
    truncate_all,
)

DB_BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The test PostgreSQL server; fails (or skips, see module doc) when unreachable."""
    server = PostgresServer.from_environment()
    error = None
    try:
        server.check()
    except Exception as exc:
        error = exc
    if error is not None:
        message = (
            f"PostgreSQL is unreachable at {server.describe()}: {error!r}. Start it, point "
            f"CSMS_TEST_POSTGRES_URL at one, deselect with -m 'not postgres', or set "
            f"{SKIP_POSTGRES_ENV}=1 to skip the postgres tests."
        )
        if skip_postgres():
            pytest.skip(message)
        pytest.fail(message, pytrace=False)
    server.drop_stale()
    yield server
    server.drop_all()


@pytest.fixture(scope="session")
def postgres_migrated_url(postgres_server: PostgresServer) -> str:
    """A session-wide throwaway PostgreSQL database, migrated to head (dropped at the end)."""
    url = render(postgres_server.create_database())

    async def migrate() -> None:
        async with Database(url) as database:
            await database.upgrade()

    run_in_thread(migrate)
    return url


@pytest.fixture(params=DB_BACKENDS)
def db_backend(request: pytest.FixtureRequest) -> str:
    """Which database the test runs on: ``"sqlite"`` or ``"postgres"``."""
    backend: str = request.param
    return backend


@pytest.fixture
def empty_database_url(
    db_backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[str]:
    """URL of a new database without any table."""
    if db_backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty' / 'csms.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.create_database()
    try:
        yield render(url)
    finally:
        server.drop_database(url)


@pytest.fixture
async def database(
    db_backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Database]:
    """A migrated database with empty tables."""
    if db_backend == "sqlite":
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'csms.db'}")
        await db.upgrade()
    else:
        db = Database(request.getfixturevalue("postgres_migrated_url"))
        await truncate_all(db)
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture
def store(database: Database) -> Store:
    """A store on ``database`` (node ``"test-node"``)."""
    return Store(database, node="test-node")


MakeCentral = Callable[..., Awaitable[CentralSystem]]


@pytest.fixture
async def make_central(database: Database, tmp_path: Path) -> AsyncIterator[MakeCentral]:
    """Start central systems on loopback port 0 over the test database (both backends).

    Keyword arguments override ``ocpp`` settings (short call timeout by default);
    ``logging`` replaces the logging settings; ``diagnostics_time_scale`` shrinks every wait
    of the diagnostics engine; ``settings`` gives other top-level settings (``{"mqtt":
    MqttSettings(...), "webhook": ..., "api": ...}``).
    """
    started: list[CentralSystem] = []

    async def factory(
        *,
        logging: LoggingSettings | None = None,
        diagnostics_time_scale: float = 1.0,
        settings: dict[str, Any] | None = None,
        **ocpp: Any,
    ) -> CentralSystem:
        options: dict[str, Any] = {"host": "127.0.0.1", "port": 0, "call_timeout": 2.0}
        options.update(ocpp)
        values: dict[str, Any] = {
            "data_dir": tmp_path,
            "node_id": "test-node",
            "logging": logging or LoggingSettings(),
            "ocpp": OcppSettings(**options),
            "http": HttpSettings(host="127.0.0.1", port=0),
            "uploads": UploadSettings(ftp_host="127.0.0.1", ftp_port=0),
            "diagnostics": DiagnosticsSettings(time_scale=diagnostics_time_scale),
            "database": DatabaseSettings(
                url=database.url.render_as_string(hide_password=False), auto_migrate=False
            ),
        }
        values.update(settings or {})
        config = Settings(**values)
        central = CentralSystem(config)
        await central.start()
        started.append(central)
        return central

    yield factory
    for central in reversed(started):
        await central.stop()


@pytest.fixture
async def central(make_central: MakeCentral) -> CentralSystem:
    """One running central system with default settings."""
    return await make_central()
