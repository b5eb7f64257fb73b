"""Snapshot and restore: kill the engine mid-ladder, resume, nothing twice."""

from __future__ import annotations

import importlib.util
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import orjson
import pytest

import diagnostics.engine as engine_module
from diagnostics import (
    DiagnosticsEngine,
    EngineState,
    SendCommand,
    StateError,
    StationInfo,
    Timings,
    load_playbooks,
    load_sla,
)
from diagnostics.commands import CommandOutcome, HardReset, OutcomeStatus, SoftReset
from diagnostics.events import EngineInput, FaultReported, HeartbeatReceived, StationConnected
from diagnostics.model import StepResult
from diagnostics.serde import decode, dumps, encode
from diagnostics.state import LogRequestRef, assemble_state, merge_state_documents
from tests.diagnostics.harness import Harness, apply_delta


def internal_error_at_soft_reset() -> Harness:
    h = Harness()
    h.engine.set_station_info(StationInfo("CP1", site="S", owner="O"))
    h.online()
    h.fault(1, "InternalError")
    h.advance(minutes=5)
    h.complete_diagnosis()
    assert isinstance(h.last().command, SoftReset)
    return h


def test_command_in_flight_at_restart_is_a_timeout_never_resent() -> None:
    h = internal_error_at_soft_reset()
    soft = h.last()
    h.restart()
    h.advance(seconds=1)
    assert isinstance(h.last().command, HardReset)
    assert [type(s.command) for s in h.sent].count(SoftReset) == 1
    step = h.engine.runs()[0].steps[-2]
    assert (step.action, step.result) == ("soft_reset", StepResult.FAILED)
    assert step.detail == "the engine restarted before the outcome arrived"
    # the soft reset's outcome arriving after the restart is ignored
    h.finish(soft)
    assert isinstance(h.last().command, HardReset)
    ids = [s.command_id for s in h.sent]
    assert len(ids) == len(set(ids))


def test_restart_during_verification_continues_it() -> None:
    h = internal_error_at_soft_reset()
    h.finish()
    h.disconnect()
    h.restart()
    h.advance(seconds=30)
    h.connect()
    h.boot()
    h.status(1, "Available")
    h.status(2, "Available")
    h.restart()
    h.advance(minutes=2)
    [run] = h.finished()
    assert run.outcome == "fixed"
    assert h.commands().count("SoftReset") == 1


def test_restart_during_grace_keeps_the_timer() -> None:
    h = Harness()
    h.online()
    h.fault(1, "InternalError")
    h.advance(minutes=2)
    h.restart()
    h.advance(minutes=2)
    assert h.sent == []
    h.advance(minutes=1)
    assert h.commands() == ["TriggerMessage"]


def test_no_second_ticket_after_restart() -> None:
    h = internal_error_at_soft_reset()
    h.finish(status=OutcomeStatus.REJECTED)
    h.finish(status=OutcomeStatus.REJECTED)
    assert len(h.opened) == 1
    h.restart()
    h.fault(1, "InternalError")
    h.advance(hours=1)
    h.restart()
    h.fault(1, "InternalError")
    h.advance(hours=1)
    assert len(h.opened) == 1
    assert len(h.engine.tickets()) == 1
    h.status(1, "Available")
    h.advance(minutes=2)
    assert len(h.resolved) == 1


def test_restart_does_not_probe_every_station_at_once() -> None:
    h = Harness()
    h.online()
    h.advance(minutes=10)  # last heartbeat at 5 min: silent from 20 min on
    h.restart()
    h.tick()
    h.advance(minutes=12, quiet=True)
    assert h.sent == []  # the silence clock restarted with the engine (at 10 min)
    h.advance(minutes=3, quiet=True)
    assert h.commands() == ["TriggerMessage"]


def test_state_round_trips_through_json() -> None:
    h = internal_error_at_soft_reset()
    h.driver("wont_start", 2, "R1")
    state = h.engine.snapshot()
    text = state.to_json()
    again = EngineState.from_json(text)
    assert again.to_dict() == state.to_dict()
    assert json.loads(text)["version"] == 1
    # a snapshot is a copy: later engine changes do not leak into it
    h.advance(hours=1)
    assert EngineState.from_json(text).to_dict() == state.to_dict()


def test_unreadable_state_raises_state_error() -> None:
    with pytest.raises(StateError):
        EngineState.from_json("{")
    with pytest.raises(StateError):
        EngineState.from_json('{"version": 99}')
    with pytest.raises(StateError):
        EngineState.from_json('{"version": 1, "stations": {"x": {"station_id": 3, "boots": 1}}}')


def _benchmark_mix() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "engine_throughput.py"
    spec = importlib.util.spec_from_file_location("engine_throughput", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_orjson_state_document_is_the_type_directed_one(seed: int) -> None:
    """``to_json`` (orjson, used for every write-ahead) writes exactly what ``to_dict`` (the
    type-directed encoder) describes, over a fleet's worth of runs, tickets and commands."""
    bench = _benchmark_mix()
    engine = DiagnosticsEngine(
        load_playbooks(bench.CONFIG / "playbooks.toml"), load_sla(bench.CONFIG / "sla.toml"),
        Timings(), upload_base="http://csms/uploads",
    )
    accepted = CommandOutcome(status=OutcomeStatus.ACCEPTED, action="test")
    events = bench.build_events(25, 6000, seed)
    for index, event in enumerate(events):
        for action in engine.observe(event, event.at):
            if isinstance(action, SendCommand) and index % 3:  # some stay in flight
                engine.command_finished(action.command_id, accepted, event.at)
    state = engine.snapshot()
    assert state.tickets and state.runs and state.pending
    assert any(step.commands for run in state.runs.values() for step in run.steps)
    text = state.to_json()
    assert json.loads(text) == state.to_dict()
    assert EngineState.from_json(text) == state


def test_events_cross_the_cluster_as_orjson_documents_and_decode_back() -> None:
    """A non-leader node sends each event as ``dumps(EngineInput, event)`` (orjson); the
    leader decodes it with the type-directed decoder: every kind of the fleet's mix comes back
    equal, and the document is the one ``encode`` describes."""
    events = _benchmark_mix().build_events(40, 4000, 5)
    assert len({type(event) for event in events}) >= 8
    for event in events:
        document = orjson.loads(dumps(EngineInput, event))
        assert document == encode(EngineInput, event)
        assert decode(EngineInput, document) == event


def _fleet(stations: int = 3) -> DiagnosticsEngine:
    engine = DiagnosticsEngine(
        load_playbooks(_benchmark_mix().CONFIG / "playbooks.toml"),
        load_sla(_benchmark_mix().CONFIG / "sla.toml"), Timings(), upload_base="http://csms/u",
    )
    for n in range(1, stations + 1):
        engine.observe(StationConnected(station_id=f"CP{n}", at=T0, protocol="1.6"), T0)
    return engine


T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_delta_holds_the_stations_that_changed_and_the_first_one_all() -> None:
    engine = _fleet()
    first = engine.state_delta()
    assert first.full and set(first.shards) == {"CP1", "CP2", "CP3"}
    later = T0 + timedelta(seconds=30)
    engine.observe(HeartbeatReceived(station_id="CP2", at=later), later)
    delta = engine.state_delta()
    assert not delta.full and set(delta.shards) == {"CP2"}
    engine.set_station_info(StationInfo("CP3", site="Depot"))
    assert set(engine.state_delta().shards) == {"CP3"}
    engine.operator_command("CP1", SoftReset(), later, by="ops")
    assert set(engine.state_delta().shards) == {"CP1"}
    assert engine.state_delta().shards == {}  # nothing changed since


def test_a_delta_that_was_not_saved_comes_back() -> None:
    engine = _fleet()
    engine.delta_not_saved(engine.state_delta())
    assert engine.state_delta().full
    later = T0 + timedelta(seconds=30)
    engine.observe(HeartbeatReceived(station_id="CP1", at=later), later)
    lost = engine.state_delta()
    engine.observe(HeartbeatReceived(station_id="CP2", at=later), later)
    engine.delta_not_saved(lost)
    assert set(engine.state_delta().shards) == {"CP1", "CP2"}


@pytest.mark.parametrize("squeezed", [False, True], ids=["defaults", "pruning"])
def test_deltas_rebuild_a_fleet_state_and_stay_small(
    squeezed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deltas taken every few calls, applied in order, give the engine's own state; one
    heartbeat's delta is a small part of the whole. ``pruning``: the fault history is pruned
    and log references evicted all along (tiny bounds), which changes other stations' shards."""
    pruned: list[int] = []
    if squeezed:
        monkeypatch.setattr(engine_module, "_PRUNE_AT", 3)
        monkeypatch.setattr(engine_module, "_MAX_LOG_REFS", 2)
        prune = DiagnosticsEngine._prune_history

        def counting(self: DiagnosticsEngine) -> None:
            pruned.append(len(self._s.occurrences))
            prune(self)

        monkeypatch.setattr(DiagnosticsEngine, "_prune_history", counting)
    bench = _benchmark_mix()
    engine = _fleet(0)
    accepted = CommandOutcome(status=OutcomeStatus.ACCEPTED, action="test")
    shards: dict[str, str] = {}
    core = ""
    events = bench.build_events(40, 8000, 5)
    for index, event in enumerate(events):
        for action in engine.observe(event, event.at):
            if isinstance(action, SendCommand):
                engine.command_finished(action.command_id, accepted, event.at)
        if index % 7 == 0:
            core = apply_delta(shards, engine.state_delta())
    core = apply_delta(shards, engine.state_delta())
    assert merge_state_documents(core, shards.values()) == json.loads(engine.snapshot_json())
    assert assemble_state(core, shards.values()) == engine.snapshot()
    if squeezed:
        assert len(pruned) >= 3 and len(engine.snapshot().log_requests) <= 2
    at = events[-1].at + timedelta(seconds=1)
    engine.observe(HeartbeatReceived(station_id="CP00001", at=at), at)
    delta = engine.state_delta()
    assert set(delta.shards) == {"CP00001"}
    assert len(delta.core) < 200  # the counters; every table is in the shards
    one = len(delta.core) + sum(len(s or "") for s in delta.shards.values())
    assert one * 5 < len(engine.snapshot_json())


def test_pruning_the_fault_history_rewrites_the_stations_it_dropped() -> None:
    """``_prune_history`` drops old fault keys of any station: their shards change too."""
    engine = _fleet(2)
    engine.observe(FaultReported(station_id="CP1", at=T0, connector_id=1, evse_id=None,
                                 code="InternalError"), T0)
    shards: dict[str, str] = {}
    core = apply_delta(shards, engine.state_delta())
    assert any(key.startswith("CP1|") for key in engine.snapshot().occurrences)
    engine._now = T0 + timedelta(days=60)  # white box: the prune, without other CP1 activity
    engine._prune_history()
    assert not engine.snapshot().occurrences
    delta = engine.state_delta()
    assert "CP1" in delta.shards
    core = apply_delta(shards, delta)
    assert merge_state_documents(core, shards.values()) == json.loads(engine.snapshot_json())


def test_evicting_another_stations_log_reference_rewrites_its_shard(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The log references are bounded: the oldest goes, whichever station it belonged to.
    The harness compares the stored shards with the engine after every call."""
    monkeypatch.setattr(engine_module, "_MAX_LOG_REFS", 1)
    h = Harness()
    h.engine._s.log_requests[999] = LogRequestRef(run_id="R-old", station_id="CP2")
    h.engine.set_station_info(StationInfo("CP2"))  # CP2's shard is written with the ref
    h.save()
    h.online()
    h.fault(1, "InternalError")
    h.advance(minutes=5)
    h.complete_diagnosis()  # CP1's log request evicts CP2's reference
    assert 999 not in h.engine.snapshot().log_requests
    assert "999" not in json.loads(h.stored_shards["CP2"])["log_requests"]
