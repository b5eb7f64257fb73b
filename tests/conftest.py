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

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

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
