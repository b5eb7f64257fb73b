"""The engine state on both databases: a core row and station shards, written by deltas."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from csms.store import Store
from diagnostics import DiagnosticsEngine, StationInfo, Timings
from diagnostics.events import HeartbeatReceived, StationConnected, StationDisconnected
from diagnostics.state import assemble_state
from tests.diagnostics.harness import PLAYBOOKS, SLA

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _engine() -> DiagnosticsEngine:
    return DiagnosticsEngine(PLAYBOOKS, SLA, Timings(), upload_base="http://csms/u")


async def _restored(store: Store, key: str = "node") -> DiagnosticsEngine:
    saved = await store.load_engine_state(key)
    assert saved is not None
    return DiagnosticsEngine(PLAYBOOKS, SLA, Timings(), assemble_state(saved.core, saved.shards),
                             upload_base="http://csms/u")


async def test_deltas_write_what_changed_and_read_back_whole(store: Store) -> None:
    engine = _engine()
    for n in range(5):
        engine.observe(StationConnected(station_id=f"CP{n}", at=T0, protocol="1.6"), T0)
    await store.save_engine_state("node", engine.state_delta())
    later = T0 + timedelta(minutes=1)
    engine.observe(HeartbeatReceived(station_id="CP3", at=later), later)
    engine.observe(StationDisconnected(station_id="CP4", at=later, reason="gone"), later)
    engine.set_station_info(StationInfo("CP0", site="Depot"))
    delta = engine.state_delta()
    assert set(delta.shards) == {"CP0", "CP3", "CP4"}
    await store.save_engine_state("node", delta)
    assert await store.load_engine_state("other") is None
    restored = await _restored(store)
    assert restored.snapshot() == engine.snapshot()
    assert restored.station_info("CP0") == StationInfo("CP0", site="Depot")


async def test_a_full_delta_removes_shards_it_does_not_hold(store: Store) -> None:
    engine = _engine()
    for n in range(3):
        engine.observe(StationConnected(station_id=f"OLD{n}", at=T0, protocol="1.6"), T0)
    await store.save_engine_state("node", engine.state_delta())
    fresh = _engine()  # e.g. the state was reset: its first delta is full
    fresh.observe(StationConnected(station_id="NEW", at=T0, protocol="1.6"), T0)
    await store.save_engine_state("node", fresh.state_delta())
    saved = await store.load_engine_state("node")
    assert saved is not None and len(saved.shards) == 1
    assert set(assemble_state(saved.core, saved.shards).stations) == {"NEW"}


async def test_a_state_written_whole_before_shards_is_still_read(store: Store) -> None:
    """Rows written by the previous version: the whole state in ``engine_state.state``."""
    engine = _engine()
    engine.observe(StationConnected(station_id="CP1", at=T0, protocol="2.0.1"), T0)
    delta = engine.state_delta()
    whole = delta.__class__(core=engine.snapshot_json(), shards={}, full=False)
    await store.save_engine_state("node", whole)
    restored = await _restored(store)
    assert restored.snapshot() == engine.snapshot()

