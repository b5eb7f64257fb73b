"""A message whose events cannot all be stored leaves nothing behind (both databases).

One OCPP message may carry several events (a 2.0.1 TransactionEvent: transaction, meter values,
charging state; a 1.6 StopTransaction: transaction data and the end). The charger gets a
CALLERROR when they cannot be stored and sends the message again, as it does when the
database goes away in the middle of a write; so either all of them are stored or none,
else the retry stores the first ones twice. Here the database itself refuses one event of a
message (a trigger refuses its meter reading, written after the station and the transaction's
end in the same transaction): nothing of the message is stored, while a message of another
charger that shared its group commit is.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from csms.store import Database, Store
from diagnostics.events import (
    HeartbeatReceived,
    MeterSample,
    MeterValuesReceived,
    TransactionEnded,
    TransactionStarted,
)

REFUSED_VALUE = 1234.0

SQLITE_TRIGGER = f"""
CREATE TRIGGER refuse_reading BEFORE INSERT ON meter_readings
WHEN NEW.value = {REFUSED_VALUE}
BEGIN SELECT RAISE(ABORT, 'the database went away'); END
"""
POSTGRES_TRIGGER = (
    f"""
CREATE FUNCTION refuse_reading() RETURNS trigger AS $$
BEGIN
    IF NEW.value = {REFUSED_VALUE} THEN RAISE EXCEPTION 'the database went away'; END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql
""",
    """
CREATE TRIGGER refuse_reading BEFORE INSERT ON meter_readings
FOR EACH ROW EXECUTE FUNCTION refuse_reading()
""",
)


async def refuse_a_reading(database: Database) -> None:
    """Make the database refuse the meter reading of value :data:`REFUSED_VALUE`."""
    statements = (SQLITE_TRIGGER,) if database.is_sqlite else POSTGRES_TRIGGER
    async with database.engine.begin() as connection:
        for statement in statements:
            await connection.execute(text(statement))


async def test_a_message_is_stored_whole_or_not_at_all(database: Database) -> None:
    store = Store(database, node="test-node")
    await refuse_a_reading(database)
    now = datetime.now(UTC)
    await store.record(TransactionStarted(
        station_id="CP-A", at=now, transaction_id="T1", connector_id=1, evse_id=1,
        id_token="TAG", meter_start_wh=0.0, started_at=now))
    # A TransactionEvent(Ended) with its final meter value, and another charger's Heartbeat,
    # recorded at the same moment: they share a group commit.
    ended = store.record(
        MeterValuesReceived(station_id="CP-A", at=now, connector_id=1, evse_id=1,
                            transaction_id="T1",
                            samples=(MeterSample(timestamp=now, value=REFUSED_VALUE),)),
        TransactionEnded(station_id="CP-A", at=now, transaction_id="T1", meter_stop_wh=1234.0,
                         stopped_at=now),
    )
    beat = store.record(HeartbeatReceived(station_id="CP-B", at=now))
    results = await asyncio.gather(ended, beat, return_exceptions=True)
    assert isinstance(results[0], Exception) and results[1] is None, results
    assert "the database went away" in str(results[0])

    assert await store.meter_readings("CP-A") == []  # no half message
    transaction = await store.get_transaction("CP-A", "T1")
    assert transaction is not None and transaction.stopped_at is None
    other = await store.get_station("CP-B")
    assert other is not None and other.last_seen_at is not None


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
async def test_an_empty_message_stores_nothing(database: Database) -> None:
    store = Store(database, node="test-node")
    await store.record()
    assert await store.list_stations() == []
