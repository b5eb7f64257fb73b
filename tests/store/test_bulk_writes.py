"""Group-commit batches written in bulk keep every event's effect (storms, reconnects)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from csms.store import Store
from diagnostics.events import (
    ConnectorStatus,
    ConnectorStatusChanged,
    HeartbeatReceived,
    StationBooted,
    StationConnected,
    StationDisconnected,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def test_storm_of_connects_boots_and_statuses(store: Store) -> None:
    ids = [f"S{n:03d}" for n in range(150)]

    async def station(sid: str, n: int) -> None:
        at = T0 + timedelta(milliseconds=n)
        await store.record(StationConnected(station_id=sid, at=at, protocol="1.6",
                                            remote_address="127.0.0.1:1"))
        await store.record(StationBooted(station_id=sid, at=at, vendor="V", model=f"M{n}",
                                         firmware_version="1.0"))
        await store.record(ConnectorStatusChanged(
            station_id=sid, at=at, connector_id=1, evse_id=None,
            status=ConnectorStatus.AVAILABLE, raw_status="Available"))
        await store.record(HeartbeatReceived(station_id=sid, at=at + timedelta(seconds=1)))

    await asyncio.gather(*(station(sid, n) for n, sid in enumerate(ids)))
    stations = {s.id: s for s in await store.list_stations()}
    assert set(stations) == set(ids)
    for n, sid in enumerate(ids):
        s = stations[sid]
        assert s.connected and s.connected_node == "test-node" and s.protocol == "1.6"
        assert s.boot_count == 1 and s.model == f"M{n}" and s.firmware_version == "1.0"
        assert s.last_seen_at == T0 + timedelta(milliseconds=n, seconds=1)
    assert [c.status for c in await store.connectors("S007")] == ["Available"]
    assert [e.kind for e in await store.connection_log("S007")] == ["connected"]


async def test_reconnect_inside_one_batch_keeps_its_order(store: Store) -> None:
    events = [
        StationConnected(station_id="R", at=T0, protocol="1.6"),
        StationBooted(station_id="R", at=T0, vendor="V", model="M"),
        StationDisconnected(station_id="R", at=T0 + timedelta(seconds=1), reason="gone"),
        StationConnected(station_id="R", at=T0 + timedelta(seconds=2), protocol="2.0.1"),
        StationBooted(station_id="R", at=T0 + timedelta(seconds=2), vendor="V", model="M2"),
    ]
    await asyncio.gather(*(store.record(e) for e in events))
    (station,) = await store.list_stations()
    assert station.connected and station.protocol == "2.0.1"
    assert station.boot_count == 2 and station.model == "M2"
    kinds = [e.kind for e in await store.connection_log("R")]
    assert kinds == ["connected", "disconnected", "connected"]
