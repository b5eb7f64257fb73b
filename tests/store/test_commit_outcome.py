"""A group commit whose COMMIT fails (PostgreSQL): when the database did commit and only its
answer was lost, the callers are told it is stored and nothing is written again; when it did
not, each caller's events are retried on their own, as for any failed batch. The failures
are injected around the real commit of the real database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from csms.store import Database, Store
from diagnostics.events import (
    ConnectorStatus,
    ConnectorStatusChanged,
    MeterSample,
    MeterValuesReceived,
)

POSTGRES_ONLY = pytest.mark.parametrize("db_backend", ["postgres"], indirect=True)
T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


class LostCommitAnswer(Database):
    """Write sessions that, while armed, lose the COMMIT's answer after the database
    committed (``after``), or fail the COMMIT so that nothing is committed (``before``)."""

    after = 0
    before = 0

    @asynccontextmanager
    async def write_session(self) -> AsyncIterator[AsyncSession]:
        async with super().write_session() as session:
            yield session
            if self.before:
                self.before -= 1
                raise ConnectionResetError("connection lost before COMMIT")
        if self.after:
            self.after -= 1
            raise ConnectionResetError("connection lost after COMMIT, its answer with it")


def _messages(stations: list[str], second: int) -> list[tuple[ConnectorStatusChanged,
                                                              MeterValuesReceived]]:
    at = T0 + timedelta(seconds=second)
    return [(ConnectorStatusChanged(station_id=sid, at=at, connector_id=1, evse_id=None,
                                    status=ConnectorStatus.CHARGING, raw_status="Charging",
                                    station_time=at),
             MeterValuesReceived(station_id=sid, at=at, connector_id=1, evse_id=None,
                                 transaction_id=None,
                                 samples=(MeterSample(timestamp=at, value=float(second)),)))
            for sid in stations]


async def _send_together(store: Store, stations: list[str], second: int) -> None:
    """One message per station, all in one group commit."""
    await asyncio.gather(*(store.record(*events) for events in _messages(stations, second)))


@POSTGRES_ONLY
async def test_a_commit_whose_answer_was_lost_is_stored_once(database: Database) -> None:
    flaky = LostCommitAnswer(database.url)
    store = Store(flaky, node="test-node")
    stations = [f"LC{n}" for n in range(5)]
    try:
        flaky.after = 1
        await _send_together(store, stations, 1)  # every caller is told: stored
        assert flaky.after == 0
        flaky.before = 1
        await _send_together(store, stations, 2)  # not committed: each retried on its own
        assert flaky.before == 0
        for sid in stations:
            history = await store.status_history(sid)
            assert sorted(h.station_time for h in history) == [
                T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)], sid
            readings = await store.meter_readings(sid)
            assert sorted(r.value for r in readings) == [1.0, 2.0], sid
    finally:
        await flaky.dispose()
