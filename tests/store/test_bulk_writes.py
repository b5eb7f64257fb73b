"""Group-commit batches written in bulk keep every event's effect (storms, reconnects,
transactions and their readings, 1.6 local starts)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from csms.store import Database, Store
from diagnostics.events import (
    ConnectorStatus,
    ConnectorStatusChanged,
    DomainEvent,
    HeartbeatReceived,
    MeterSample,
    MeterValuesReceived,
    StationBooted,
    StationConnected,
    StationDisconnected,
    StationEvent,
    TransactionEnded,
    TransactionStarted,
    TransactionUpdated,
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


def transaction_script(station: str) -> list[DomainEvent]:
    """Starts, updates and ends of three transactions in an awkward order: an end before its
    start, a repeated start, two updates of one transaction, an update after the end."""
    def start(tx: str, meter: float, s: int) -> TransactionStarted:
        return TransactionStarted(station_id=station, at=T0 + timedelta(seconds=s),
                                  transaction_id=tx, connector_id=1, evse_id=1,
                                  id_token=f"TAG-{tx}", meter_start_wh=meter,
                                  started_at=T0 + timedelta(seconds=s))

    def update(tx: str, state: str | None, s: int) -> TransactionUpdated:
        return TransactionUpdated(station_id=station, at=T0 + timedelta(seconds=s),
                                  transaction_id=tx, charging_state=state)

    def end(tx: str, meter: float | None, s: int) -> TransactionEnded:
        return TransactionEnded(station_id=station, at=T0 + timedelta(seconds=s),
                                transaction_id=tx, meter_stop_wh=meter,
                                stopped_at=T0 + timedelta(seconds=s), reason=f"r{s}")

    return [
        end("A", 900.0, 50), start("A", 100.0, 1), update("A", "Charging", 2),
        start("B", 10.0, 3), update("B", "Charging", 4), update("B", "SuspendedEV", 5),
        update("B", None, 6), start("B", 999.0, 7), end("B", None, 8), end("B", 70.0, 9),
        update("C", "EVConnected", 10), end("C", 5.0, 11), update("C", "Idle", 12),
        start("C", 1.0, 13),
    ]


def transaction_rows(transactions: list[Any]) -> dict[str, tuple[Any, ...]]:
    return {tx.transaction_id: (
        tx.evse_id, tx.connector_id, tx.id_token, tx.meter_start_wh, tx.meter_stop_wh,
        tx.started_at, tx.stopped_at, tx.stop_reason, tx.charging_state, tx.energy_wh,
    ) for tx in transactions}


async def test_transactions_in_one_batch_end_as_written_one_by_one(store: Store) -> None:
    for event in transaction_script("ONE-BY-ONE"):
        await store.record(event)
    await asyncio.gather(*(store.record(e) for e in transaction_script("BATCHED")))
    one_by_one = transaction_rows(await store.transactions("ONE-BY-ONE"))
    batched = transaction_rows(await store.transactions("BATCHED"))
    assert batched == one_by_one
    # and the script means what it says
    assert one_by_one["A"][3:5] == (100.0, 900.0) and one_by_one["A"][-1] == 800.0
    assert one_by_one["B"][3:5] == (10.0, 70.0) and one_by_one["B"][7:9] == ("r9", "SuspendedEV")
    assert one_by_one["C"][8] == "Idle" and one_by_one["C"][-1] == 4.0


async def test_readings_find_a_transaction_started_in_their_batch(store: Store) -> None:
    def readings(tx: str | None, first: float) -> MeterValuesReceived:
        return MeterValuesReceived(
            station_id="M", at=T0, connector_id=1, evse_id=1, transaction_id=tx,
            samples=tuple(MeterSample(timestamp=T0, value=first + n) for n in range(3)))

    await asyncio.gather(
        store.record(TransactionStarted(station_id="M", at=T0, transaction_id="T1",
                                        connector_id=1, evse_id=1, id_token=None,
                                        meter_start_wh=0.0, started_at=T0),
                     readings("T1", 10.0)),
        store.record(readings("unknown", 20.0)),
        store.record(readings(None, 30.0)),
    )
    (tx,) = await store.transactions("M")
    stored = await store.meter_readings("M")
    by_value = {r.value: r.transaction_pk for r in stored}
    assert by_value == {10.0: tx.id, 11.0: tx.id, 12.0: tx.id,
                        20.0: None, 21.0: None, 22.0: None,
                        30.0: None, 31.0: None, 32.0: None}
    # same timestamp: newest first by insertion order, so the samples' order is kept
    assert [r.value for r in stored] == [32.0, 31.0, 30.0, 22.0, 21.0, 20.0, 12.0, 11.0, 10.0]


async def test_a_local_start_shares_the_commit_and_survives_a_failed_neighbour(
    store: Store,
) -> None:
    """1.6 StartTransaction joins the group commit; when a neighbour's event fails the batch,
    the start is written again on its own and still gets its id."""
    class Unstorable(StationEvent):
        """An event the store does not know: writing it fails."""

    def begin(station: str) -> Any:
        return store.begin_local_transaction(
            station_id=station, at=T0, connector_id=1, evse_id=None, id_token="TAG",
            meter_start_wh=5.0, started_at=T0)

    results = await asyncio.gather(
        begin("L1"), store.record(Unstorable(station_id="BAD", at=T0)), begin("L2"),
        store.record(HeartbeatReceived(station_id="L3", at=T0 + timedelta(seconds=1))),
        return_exceptions=True)
    first, failed, second, beat = results
    assert isinstance(first, int) and isinstance(second, int) and first != second
    assert isinstance(failed, Exception) and beat is None
    for station, pk in (("L1", first), ("L2", second)):
        (tx,) = await store.transactions(station)
        assert (tx.id, tx.transaction_id, tx.meter_start_wh) == (pk, str(pk), 5.0)
        row = await store.get_station(station)
        assert row is not None and row.last_seen_at == T0
    assert await store.get_station("BAD") is None


async def test_a_caller_cancelled_while_waiting_leaves_the_batch_whole(store: Store) -> None:
    """A charger that hangs up while its message is being committed: its events are still
    written with the batch, the other callers get their answers, nothing is left pending."""
    beats = [asyncio.ensure_future(store.record(HeartbeatReceived(
        station_id=f"C{n}", at=T0 + timedelta(seconds=n)))) for n in range(5)]
    await asyncio.sleep(0)  # all five are queued; the writer has started
    beats[2].cancel()
    results = await asyncio.gather(*beats, return_exceptions=True)
    assert isinstance(results[2], asyncio.CancelledError)
    assert [r for n, r in enumerate(results) if n != 2] == [None] * 4
    seen = {s.id: s.last_seen_at for s in await store.list_stations()}
    assert seen == {f"C{n}": T0 + timedelta(seconds=n) for n in range(5)}
    assert store.queued == 0


async def test_write_lanes_keep_each_stations_order(database: Database) -> None:
    """``database.write_lanes`` > 1: group commits of several lanes in flight at once
    (PostgreSQL; SQLite keeps one). Reconnects of 40 stations recorded at the same moment all
    land, and each station ends as its last event says. (Each station has one lane by
    construction; the reads order by time, so this test would not notice two lanes of one
    station committing out of order.)"""
    store = Store(database, node="test-node", write_lanes=4)
    assert len(store._lanes) == (1 if database.is_sqlite else 4)

    def reconnect(sid: str) -> list[DomainEvent]:
        return [
            StationConnected(station_id=sid, at=T0, protocol="1.6"),
            StationDisconnected(station_id=sid, at=T0 + timedelta(seconds=1), reason="gone"),
            StationConnected(station_id=sid, at=T0 + timedelta(seconds=2), protocol="2.0.1"),
            StationDisconnected(station_id=sid, at=T0 + timedelta(seconds=3), reason="again"),
            StationConnected(station_id=sid, at=T0 + timedelta(seconds=4), protocol="1.6"),
        ]

    ids = [f"LANE{n:02d}" for n in range(40)]
    await asyncio.gather(*(store.record(e) for sid in ids for e in reconnect(sid)))
    assert store.queued == 0
    stations = {s.id: s for s in await store.list_stations()}
    for sid in ids:
        assert stations[sid].connected and stations[sid].protocol == "1.6", sid
        kinds = [e.kind for e in await store.connection_log(sid)]
        assert kinds == ["connected", "disconnected", "connected", "disconnected",
                         "connected"][::-1], sid
