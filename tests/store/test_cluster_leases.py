"""Leases and node liveness on both databases."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from csms.store import Store

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TTL = timedelta(seconds=10)


async def test_one_holder_until_expiry_then_takeover(store: Store) -> None:
    assert await store.acquire_lease("diagnostics", "a", T0, TTL)
    assert not await store.acquire_lease("diagnostics", "b", T0 + timedelta(seconds=5), TTL)
    assert await store.acquire_lease("diagnostics", "a", T0 + timedelta(seconds=5), TTL)  # renew
    assert await store.lease_holder("diagnostics", T0 + timedelta(seconds=14)) == "a"
    assert not await store.acquire_lease("diagnostics", "b", T0 + timedelta(seconds=14), TTL)
    later = T0 + timedelta(seconds=16)
    assert await store.lease_holder("diagnostics", later) is None
    assert await store.acquire_lease("diagnostics", "b", later, TTL)
    assert not await store.holds_lease("diagnostics", "a", later)
    assert await store.holds_lease("diagnostics", "b", later)
    await store.release_lease("diagnostics", "a")  # not a's: nothing happens
    assert await store.holds_lease("diagnostics", "b", later)
    await store.release_lease("diagnostics", "b")
    assert await store.acquire_lease("diagnostics", "a", later, TTL)


async def test_racing_nodes_never_both_win(store: Store) -> None:
    for round_ in range(5):
        name = f"race-{round_}"
        results = await asyncio.gather(*(
            store.acquire_lease(name, f"n{i}", T0, TTL) for i in range(6)))
        assert sum(results) == 1, results


async def test_dead_nodes_are_the_ones_holding_stations_without_heartbeat(store: Store) -> None:
    await store.node_alive("alive", T0, {"http": "x"})
    await store.node_alive("dead", T0 - timedelta(minutes=5), {})
    from csms.store.models import Station

    async with store.db.write_session() as session:
        for sid, node in (("S1", "alive"), ("S2", "dead"), ("S3", "ghost")):
            session.add(Station(id=sid, registered_at=T0, updated_at=T0, boot_count=0,
                                connected=True, connected_node=node))
    assert await store.dead_nodes(T0, timedelta(seconds=30)) == ["dead", "ghost"]
    assert [n.node for n in await store.live_nodes(T0, timedelta(seconds=30))] == ["alive"]
    assert await store.station_node("S1") == "alive"
    assert await store.station_node("NOPE") is None
