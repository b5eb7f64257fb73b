"""The diagnostics pump saves the engine state once per batch of queued inputs, not once per
input: a reconnect storm of N chargers would otherwise write the state 2N times. Each save
holds only the stations its batch changed (``StateDelta``)."""

from __future__ import annotations

import pytest

from csms.automation import DiagnosticsRunner
from csms.protocol.common import utc_now
from diagnostics.events import StationConnected, StationDisconnected
from diagnostics.state import StateDelta
from tests.conftest import MakeCentral
from tests.e2e.helpers import until

STATIONS = 200


async def test_a_storm_of_disconnects_is_saved_in_a_few_snapshots(
    make_central: MakeCentral, monkeypatch: pytest.MonkeyPatch
) -> None:
    central = await make_central(diagnostics_time_scale=0.004)
    runner = central.diagnostics
    assert isinstance(runner, DiagnosticsRunner) and runner.engine is not None
    saves: list[StateDelta] = []
    real_save = central.store.save_engine_state

    async def counting_save(key: str, delta: StateDelta) -> None:
        saves.append(delta)
        await real_save(key, delta)

    monkeypatch.setattr(central.store, "save_engine_state", counting_save)
    ids = [f"STORM-{i:03}" for i in range(STATIONS)]
    for station_id in ids:  # queued at once, as a storm's events are
        runner.observe(StationConnected(station_id=station_id, at=utc_now(), protocol="1.6"))
    engine = runner.engine
    await until(lambda: runner._queue.empty()
                and all(s in engine._s.stations and engine._s.stations[s].connected
                        for s in ids))
    saves.clear()
    for station_id in ids:
        runner.observe(StationDisconnected(station_id=station_id, at=utc_now(),
                                           reason="connection lost"))
    await until(lambda: all(not engine._s.stations[s].connected for s in ids))
    await until(lambda: runner._queue.empty())
    # Every disconnect opened an offline run (an action each); they share a few saves, each
    # writing the stations its batch touched, not the whole state.
    assert 1 <= len(saves) <= 5, len(saves)
    assert not any(delta.full for delta in saves[1:])  # a new engine's first save is full
    assert set().union(*(delta.shards for delta in saves)) == set(ids)
