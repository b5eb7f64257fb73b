"""The diagnostics pump saves the engine state once per batch of queued inputs, not once per
input: a reconnect storm of N chargers would otherwise encode the whole state 2N times."""

from __future__ import annotations

from typing import Any

import pytest

from csms.automation import DiagnosticsRunner
from csms.protocol.common import utc_now
from diagnostics.events import StationConnected, StationDisconnected
from tests.conftest import MakeCentral
from tests.e2e.helpers import until

STATIONS = 200


async def test_a_storm_of_disconnects_is_saved_in_a_few_snapshots(
    make_central: MakeCentral, monkeypatch: pytest.MonkeyPatch
) -> None:
    central = await make_central(diagnostics_time_scale=0.004)
    runner = central.diagnostics
    assert isinstance(runner, DiagnosticsRunner) and runner.engine is not None
    saves: list[int] = []
    real_save = central.store.save_engine_state

    async def counting_save(key: str, state: Any) -> None:
        saves.append(len(state))
        await real_save(key, state)

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
    # Every disconnect opened an offline run (an action each); they share a few snapshots.
    assert 1 <= len(saves) <= 5, len(saves)
