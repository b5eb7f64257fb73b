"""Migrations: they apply from empty, revert, and agree with the models."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect, text
from sqlalchemy.exc import IntegrityError

from csms.store import Base, Database, alembic_config, head_revision, upgrade
from csms.store.database import SQLITE_BUSY_TIMEOUT_MS

TABLES = {
    "engine_state",
    "engine_state_shards",
    "tickets",
    "diagnostics_runs",
    "api_tokens",
    "driver_reports",
    "log_files",
    "webhook_deliveries",
    "cluster_leases",
    "cluster_nodes",
    "stations",
    "connectors",
    "status_history",
    "transactions",
    "meter_readings",
    "events",
    "connection_log",
}


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_upgrade_from_empty_and_back(empty_database_url: str) -> None:
    async with Database(empty_database_url) as db:
        assert await db.current_revision() is None
        await db.upgrade()
        assert await db.current_revision() == head_revision() == "0007"
        async with db.engine.connect() as connection:
            assert await connection.run_sync(_tables) == TABLES | {"alembic_version"}

        await db.upgrade()  # already at head: nothing to do
        assert await db.current_revision() == head_revision()

        await db.downgrade("base")
        assert await db.current_revision() is None
        async with db.engine.connect() as connection:
            assert await connection.run_sync(_tables) == {"alembic_version"}

        await db.upgrade()
        assert await db.current_revision() == head_revision()


async def test_concurrent_upgrades_take_turns(empty_database_url: str) -> None:
    """Several nodes starting at once on a new database: one migrates, the others wait."""
    databases = [Database(empty_database_url) for _ in range(3)]
    try:
        await asyncio.gather(*(db.upgrade() for db in databases))
        for db in databases:
            assert await db.current_revision() == head_revision()
    finally:
        await asyncio.gather(*(db.dispose() for db in databases))


async def test_models_match_migrations(database: Database) -> None:
    def diff(connection: Connection) -> list[object]:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, Base.metadata))

    async with database.engine.connect() as connection:
        assert await connection.run_sync(diff) == []


async def test_upgrade_helper_returns_revision(empty_database_url: str) -> None:
    assert await upgrade(empty_database_url) == head_revision()
    assert await upgrade(empty_database_url) == head_revision()


async def test_env_without_connection_like_the_alembic_cli(empty_database_url: str) -> None:
    """env.py creates its own engine when no connection is handed over."""
    config = alembic_config(empty_database_url)
    await asyncio.to_thread(command.upgrade, config, "head")
    async with Database(empty_database_url) as db:
        assert await db.current_revision() == head_revision()


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_offline_sql(dialect: str) -> None:
    url = {"sqlite": "sqlite+aiosqlite://", "postgresql": "postgresql+asyncpg://x@h/db"}[dialect]
    config = alembic_config(url)
    config.output_buffer = io.StringIO()
    command.upgrade(config, "head", sql=True)
    sql = config.output_buffer.getvalue()
    assert "CREATE TABLE stations" in sql
    assert "CREATE TABLE connection_log" in sql


def test_migrations_are_found_from_the_package() -> None:
    location = Path(alembic_config().get_main_option("script_location") or "")
    assert (location / "env.py").is_file()
    assert (location / "versions" / "0001_initial.py").is_file()


async def test_sqlite_connection_settings(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "folder" / "csms.db"
    async with Database(f"sqlite+aiosqlite:///{path}") as db:
        assert path.parent.is_dir()
        await db.upgrade()
        async with db.engine.connect() as connection:
            pragma = connection.exec_driver_sql
            assert (await pragma("PRAGMA journal_mode")).scalar() == "wal"
            assert (await pragma("PRAGMA foreign_keys")).scalar() == 1
            assert (await pragma("PRAGMA busy_timeout")).scalar() == SQLITE_BUSY_TIMEOUT_MS
        async with db.write_session() as session:
            # foreign keys are enforced
            with pytest.raises(IntegrityError, match="FOREIGN KEY"):
                await session.execute(
                    text(
                        "INSERT INTO connectors (station_id, evse_id, connector_id, status,"
                        " raw_status, updated_at) VALUES ('nope', 0, 1, 'x', 'x', '2024-01-01')"
                    )
                )
