"""Transactions: idempotent starts, local (1.6) ids, updates and ends in any order."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from csms.store import Store
from diagnostics.events import (
    HeartbeatReceived,
    MeterSample,
    MeterValuesReceived,
    TransactionEnded,
    TransactionStarted,
    TransactionUpdated,
)

T0 = datetime(2025, 3, 1, 8, 0, 0, tzinfo=UTC)


def t(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def started(
    tx: str = "tx-1", meter: float | None = 1000.0, station: str = "CP1"
) -> TransactionStarted:
    return TransactionStarted(
        station_id=station,
        at=t(0),
        transaction_id=tx,
        connector_id=1,
        evse_id=1,
        id_token="TAG-1",
        meter_start_wh=meter,
        started_at=t(-2),
    )


def ended(tx: str = "tx-1", meter: float | None = 8500.0, at: float = 3600) -> TransactionEnded:
    return TransactionEnded(
        station_id="CP1",
        at=t(at),
        transaction_id=tx,
        meter_stop_wh=meter,
        stopped_at=t(at - 1),
        reason="EVDisconnected",
    )


async def test_start_update_end(store: Store) -> None:
    await store.record(started())
    await store.record(
        TransactionUpdated(
            station_id="CP1",
            at=t(10),
            transaction_id="tx-1",
            charging_state="Charging",
            trigger_reason="ChargingStateChanged",
        )
    )
    await store.record(TransactionUpdated(station_id="CP1", at=t(20), transaction_id="tx-1"))
    (tx,) = await store.transactions("CP1")
    assert (tx.transaction_id, tx.evse_id, tx.connector_id, tx.id_token) == ("tx-1", 1, 1, "TAG-1")
    assert tx.started_at == t(-2) and tx.stopped_at is None
    assert tx.charging_state == "Charging"  # an update without a state keeps it
    assert tx.energy_wh is None

    await store.record(ended())
    tx2 = await store.get_transaction("CP1", "tx-1")
    assert tx2 is not None and tx2.id == tx.id
    assert tx2.meter_start_wh == 1000.0 and tx2.meter_stop_wh == 8500.0
    assert tx2.energy_wh == 7500.0
    assert tx2.stopped_at == t(3599) and tx2.stop_reason == "EVDisconnected"
    assert await store.get_transaction("CP1", "nope") is None


async def test_start_is_idempotent(store: Store) -> None:
    await store.record(started())
    await store.record(started())
    changed = TransactionStarted(
        station_id="CP1",
        at=t(5),
        transaction_id="tx-1",
        connector_id=2,
        evse_id=2,
        id_token="OTHER",
        meter_start_wh=5.0,
        started_at=t(4),
    )
    await store.record(changed)
    (tx,) = await store.transactions("CP1")
    assert (tx.connector_id, tx.id_token, tx.meter_start_wh, tx.started_at) == (
        1,
        "TAG-1",
        1000.0,
        t(-2),
    )
    # same id on another station is another transaction
    await store.record(started(station="CP2"))
    assert len(await store.transactions("CP2")) == 1


async def test_end_without_meter_start_has_no_energy(store: Store) -> None:
    await store.record(started(meter=None))
    await store.record(ended())
    (tx,) = await store.transactions("CP1")
    assert tx.meter_stop_wh == 8500.0 and tx.energy_wh is None


async def test_end_before_start_is_completed_by_late_start(store: Store) -> None:
    """Queued offline messages may arrive out of order; nothing is lost."""
    await store.record(
        TransactionUpdated(
            station_id="CP1", at=t(1), transaction_id="tx-9", charging_state="SuspendedEV"
        )
    )
    await store.record(ended("tx-9", meter=2000.0))
    (tx,) = await store.transactions("CP1")
    assert tx.started_at is None and tx.meter_stop_wh == 2000.0 and tx.energy_wh is None
    assert tx.charging_state == "SuspendedEV"

    await store.record(started("tx-9", meter=500.0))
    (tx,) = await store.transactions("CP1")
    assert tx.started_at == t(-2) and tx.id_token == "TAG-1"
    assert tx.energy_wh == 1500.0
    assert tx.stopped_at == t(3599)


async def test_local_transactions_get_unique_integer_ids(store: Store) -> None:
    async def begin(station: str, connector: int) -> int:
        return await store.begin_local_transaction(
            station_id=station,
            at=t(connector),
            connector_id=connector,
            evse_id=None,
            id_token=f"TAG-{connector}",
            meter_start_wh=100.0 * connector,
            started_at=t(connector - 1),
        )

    ids = await asyncio.gather(*(begin(f"CP{i % 3}", i) for i in range(1, 25)))
    assert len(set(ids)) == len(ids)
    assert all(isinstance(i, int) and i > 0 for i in ids)

    transactions = await store.transactions("CP1")
    assert {tx.transaction_id for tx in transactions} == {str(tx.id) for tx in transactions}
    first = await store.get_transaction("CP1", str(ids[0]))
    assert first is not None
    assert (first.connector_id, first.evse_id, first.id_token) == (1, None, "TAG-1")
    assert first.meter_start_wh == 100.0 and first.started_at == t(0)

    # 1.6 StopTransaction then refers to the id as a string
    await store.record(ended(str(ids[0]), meter=350.0))
    first = await store.get_transaction("CP1", str(ids[0]))
    assert first is not None and first.energy_wh == 250.0
    station = await store.get_station("CP1")
    assert station is not None and station.last_seen_at == t(3600)


async def test_local_id_skips_numbers_the_station_already_uses(store: Store) -> None:
    # A stop for a transaction the CSMS never opened (say from before a database reset)
    await store.record(ended("1", meter=10.0))
    await store.record(ended("3", meter=10.0))
    new_id = await store.begin_local_transaction(
        station_id="CP1",
        at=t(0),
        connector_id=1,
        evse_id=None,
        id_token=None,
        meter_start_wh=None,
        started_at=t(0),
    )
    assert new_id not in (1, 2, 3)  # keys 1 and 2 are the stops, key 3 clashes with "3"
    numbers = sorted(tx.transaction_id for tx in await store.transactions("CP1"))
    assert numbers == sorted(["1", "3", str(new_id)])


async def test_concurrent_writes_of_one_station(store: Store) -> None:
    """Many events of one station at once: no lock errors, no lost updates."""
    await store.record(started())

    async def meter(i: int) -> None:
        await store.record(
            MeterValuesReceived(
                station_id="CP1",
                at=t(i),
                connector_id=1,
                evse_id=1,
                transaction_id="tx-1",
                samples=(MeterSample(timestamp=t(i), value=float(i)),),
            )
        )

    await asyncio.gather(
        *(meter(i) for i in range(30)),
        *(store.record(HeartbeatReceived(station_id="CP1", at=t(100 + i))) for i in range(10)),
    )
    (tx,) = await store.transactions("CP1")
    assert len(await store.meter_readings("CP1", tx.id)) == 30
    station = await store.get_station("CP1")
    assert station is not None and station.last_seen_at == t(109)


async def test_local_starts_of_one_batch_skip_numbers_the_station_already_uses(
    store: Store,
) -> None:
    """Starts that share a group commit are numbered together (on PostgreSQL from the
    table's sequence in one statement); a number the station already uses is skipped there
    too."""
    async def begin(connector: int) -> int:
        return await store.begin_local_transaction(
            station_id="CP1", at=t(connector), connector_id=connector, evse_id=None,
            id_token="TAG", meter_start_wh=10.0 * connector, started_at=t(connector))

    first = await begin(1)
    # Transactions the station made itself (stops for ids the CSMS never gave), named after
    # the next three keys that the batch below will draw: their own rows take the three keys
    # in between.
    for n in range(4, 7):
        await store.record(ended(str(first + n), meter=1.0))
    made = {tx.transaction_id: tx.id for tx in await store.transactions("CP1")}
    assert sorted(made[str(first + n)] for n in range(4, 7)) == [first + 1, first + 2,
                                                                 first + 3]

    ids = await asyncio.gather(*(begin(c) for c in (2, 3, 4, 5)))
    assert len(set(ids)) == 4 and not set(ids) & {first + n for n in range(1, 7)}
    by_key = {tx.id: tx for tx in await store.transactions("CP1")}
    for connector, pk in zip((2, 3, 4, 5), ids, strict=True):
        tx = by_key[pk]
        assert tx.transaction_id == str(pk) and tx.connector_id == connector
        assert tx.meter_start_wh == 10.0 * connector and tx.started_at == t(connector)
    assert len(by_key) == 1 + 3 + 4


async def test_local_start_sent_again_is_the_same_transaction(store: Store) -> None:
    """A 1.6 charger sends StartTransaction again when its answer was lost (§3.3, §4.8): the
    same start gets the same transactionId, in a later batch or in the same one; a start that
    differs in anything it carries is another transaction."""
    async def begin(*, meter: float = 100.0, at: float = 0.0, connector: int = 1,
                    tag: str | None = "TAG") -> int:
        return await store.begin_local_transaction(
            station_id="CP1", at=t(at + 1), connector_id=connector, evse_id=None,
            id_token=tag, meter_start_wh=meter, started_at=t(at))

    first = await begin()
    assert await begin() == first
    together = await asyncio.gather(*(begin(at=5.0) for _ in range(3)), begin(at=5.0, tag=None))
    assert together[0] == together[1] == together[2] != first
    assert await begin(at=5.0, tag=None) == together[3]  # no id tag: found all the same
    others = [together[3], await begin(meter=101.0), await begin(at=0.001),
              await begin(connector=2), await begin(tag=None)]
    assert len({first, together[0], *others}) == 7
    rows = await store.transactions("CP1")
    assert sorted(tx.id for tx in rows) == sorted({first, together[0], *others})
    assert {tx.transaction_id for tx in rows} == {str(tx.id) for tx in rows}
