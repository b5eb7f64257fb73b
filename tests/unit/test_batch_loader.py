"""Concurrent single-key lookups share one query."""

from __future__ import annotations

import asyncio

import pytest

from csms.store.loader import BatchLoader


async def test_concurrent_loads_share_queries() -> None:
    calls: list[list[int]] = []

    async def fetch(keys: list[int]) -> dict[int, str]:
        calls.append(keys)
        await asyncio.sleep(0.01)
        return {k: f"v{k}" for k in keys if k % 2 == 0}

    loader = BatchLoader(fetch, max_batch=100)
    results = await asyncio.gather(*(loader.load(k % 250) for k in range(500)))
    assert results == [f"v{k % 250}" if k % 2 == 0 else None for k in range(500)]
    assert len(calls) == 3 and sorted(k for c in calls for k in c) == list(range(250))
    # later callers join the next query while one is on its way
    first = asyncio.ensure_future(loader.load(2))
    await asyncio.sleep(0.001)
    rest = await asyncio.gather(*(loader.load(k) for k in (4, 6, 7)))
    assert await first == "v2" and rest == ["v4", "v6", None]
    assert len(calls) == 5


async def test_errors_reach_every_caller_of_the_batch() -> None:
    async def fetch(keys: list[str]) -> dict[str, str]:
        raise RuntimeError("database away")

    loader: BatchLoader[str, str] = BatchLoader(fetch)
    results = await asyncio.gather(loader.load("a"), loader.load("b"), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    with pytest.raises(RuntimeError):
        await loader.load("c")
