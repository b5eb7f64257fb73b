"""A message whose events cannot all be stored leaves nothing behind (both databases).

One OCPP message may carry several events (a 2.0.1 TransactionEvent: transaction, meter values,
charging state; a 1.6 StopTransaction: transaction data and the end). The charger gets a
CALLERROR when they cannot be stored and sends the message again, as it does when the
database goes away in the middle of a write; so either all of them are stored or none,
else the retry stores the first ones twice. Here the database refuses the last event of a
message (an injected failure in the store's write of that event, in the same transaction):
nothing of the message is stored, while a message of another charger that shared its
group commit is.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from csms.store import Database, Store
from diagnostics.events import (
    DomainEvent,
    HeartbeatReceived,
    MeterSample,
    MeterValuesReceived,
    TransactionEnded,
    TransactionStarted,
)


class RefusingStore(Store):
    """A store whose database write of a ``TransactionEnded`` fails (after the other events
    of the same transaction were written)."""

    async def _record(self, session: Any, event: DomainEvent) -> None:
        if isinstance(event, TransactionEnded):
            raise RuntimeError("the database went away")
        await super()._record(session, event)


async def test_a_message_is_stored_whole_or_not_at_all(database: Database) -> None:
    store = RefusingStore(database, node="test-node")
    now = datetime.now(UTC)
    await store.record(TransactionStarted(
        station_id="CP-A", at=now, transaction_id="T1", connector_id=1, evse_id=1,
        id_token="TAG", meter_start_wh=0.0, started_at=now))
    # A TransactionEvent(Ended) with its final meter value, and another charger's Heartbeat,
    # recorded at the same moment: they share a group commit.
    ended = store.record(
        MeterValuesReceived(station_id="CP-A", at=now, connector_id=1, evse_id=1,
                            transaction_id="T1",
                            samples=(MeterSample(timestamp=now, value=1234.0),)),
        TransactionEnded(station_id="CP-A", at=now, transaction_id="T1", meter_stop_wh=1234.0,
                         stopped_at=now),
    )
    beat = store.record(HeartbeatReceived(station_id="CP-B", at=now))
    results = await asyncio.gather(ended, beat, return_exceptions=True)
    assert isinstance(results[0], RuntimeError) and results[1] is None, results

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
