"""Coalesced reads: concurrent lookups of single keys become one ``IN (...)`` query.

A reconnect storm asks for thousands of stations' credentials at once, one per handshake;
the callers that arrive while a query is on its way share the next one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class BatchLoader(Generic[K, V]):
    """``await loader.load(key)``: the value ``fetch`` found for ``key``, or ``None``."""

    def __init__(
        self, fetch: Callable[[list[K]], Awaitable[dict[K, V]]], max_batch: int = 500
    ) -> None:
        self.fetch = fetch
        self.max_batch = max_batch
        self._waiting: dict[K, list[asyncio.Future[V | None]]] = {}
        self._task: asyncio.Task[None] | None = None
        self.queries = 0

    async def load(self, key: K) -> V | None:
        """The value for ``key`` (``None`` when there is none)."""
        future: asyncio.Future[V | None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append(future)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        return await future

    async def _run(self) -> None:
        await asyncio.sleep(0)  # callers of this same moment join the first query
        while self._waiting:
            keys = list(self._waiting)[: self.max_batch]
            futures = {key: self._waiting.pop(key) for key in keys}
            self.queries += 1
            try:
                found = await self.fetch(keys)
            except Exception as exc:
                for waiting in futures.values():
                    for future in waiting:
                        if not future.done():
                            future.set_exception(exc)
                continue
            for key, waiting in futures.items():
                value = found.get(key)
                for future in waiting:
                    if not future.done():
                        future.set_result(value)
