"""Throwaway PostgreSQL databases for the benchmark: ``CREATE DATABASE bench_<random>`` through
the admin database (default ``postgresql://postgres@127.0.0.1:5432/test``, which only issues
CREATE/DROP and never holds a table), dropped again at the end."""

from __future__ import annotations

import asyncio
import secrets
from urllib.parse import urlsplit, urlunsplit

import asyncpg  # type: ignore[import-untyped]  # no type information

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
PREFIX = "bench_"
TIMEOUT = 10.0


def _plain(url: str) -> str:
    """``postgresql+asyncpg://…`` → ``postgresql://…`` (asyncpg's own form)."""
    scheme, rest = url.split("://", 1)
    return "postgresql://" + rest if scheme.startswith("postgres") else url


class Databases:
    """Creates uniquely named databases and drops every one of them in :meth:`drop_all`."""

    def __init__(self, admin_url: str = DEFAULT_ADMIN_URL) -> None:
        self.admin_url = _plain(admin_url)
        self.created: list[str] = []

    async def _execute(self, statement: str) -> None:
        connection = await asyncpg.connect(self.admin_url, timeout=TIMEOUT)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    def check(self) -> str | None:
        """None when the server answers, else why not."""
        try:
            asyncio.run(self._execute("SELECT 1"))
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            return f"{type(exc).__name__}: {exc}"
        return None

    def create(self) -> str:
        """A new empty database; its SQLAlchemy URL (``postgresql+asyncpg://…``)."""
        name = f"{PREFIX}{secrets.token_hex(6)}"
        asyncio.run(self._execute(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        parts = urlsplit(self.admin_url)
        return urlunsplit(("postgresql+asyncpg", parts.netloc, "/" + name, "", ""))

    def drop(self, url: str) -> None:
        """Drop a database made by :meth:`create` (closing connections left to it)."""
        name = urlsplit(url).path.lstrip("/")
        if not name.startswith(PREFIX) or name not in self.created:
            raise ValueError(f"not a benchmark database: {name}")
        asyncio.run(self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.created.remove(name)

    def drop_all(self) -> list[str]:
        """Drop every database still there; the names that could not be dropped."""
        failed = []
        for name in list(self.created):
            try:
                asyncio.run(self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                self.created.remove(name)
            except (OSError, asyncpg.PostgresError, TimeoutError):
                failed.append(name)
        return failed
