"""Operator commands go through the ladder's safety rules (pure engine)."""

from __future__ import annotations

from diagnostics import RunChanged
from diagnostics.commands import (
    ChangeAvailability,
    HardReset,
    SoftReset,
    TriggerKind,
    TriggerMessage,
    UnlockConnector,
)
from tests.diagnostics.harness import Harness


def _ready() -> Harness:
    h = Harness()
    h.connect()
    h.boot()
    h.status(1, "Available")
    return h


def test_reset_allowed_when_idle_and_its_boot_is_not_a_boot_loop() -> None:
    h = _ready()
    for _ in range(3):
        decision = h.engine.operator_command("CP1", SoftReset(), h.now, by="op")
        assert decision.allowed, decision.reason
        h.advance(seconds=30)
        h.boot()
        h.status(1, "Available")
    runs = [a.run for a in h.actions if isinstance(a, RunChanged)]
    assert not [r for r in runs if r.detection == "boot_loop"], runs


def test_reset_budget_stops_reset_loops() -> None:
    h = _ready()
    for _ in range(3):
        assert h.engine.operator_command("CP1", HardReset(), h.now, by="op").allowed
        h.advance(seconds=30)
    refused = h.engine.operator_command("CP1", SoftReset(), h.now, by="op", force=True)
    assert not refused.allowed and "budget" in (refused.reason or "")
    # other commands are not resets: not limited by the budget
    assert h.engine.operator_command("CP1", TriggerMessage(TriggerKind.STATUS_NOTIFICATION),
                                     h.now, by="op").allowed


def test_live_session_blocks_reset_unlock_and_availability_unless_forced() -> None:
    h = _ready()
    h.status(1, "Charging")
    h.tx_start(1, "tx-1")
    for command in (SoftReset(), UnlockConnector(connector_id=1),
                    ChangeAvailability(operative=False, connector_id=1)):
        decision = h.engine.operator_command("CP1", command, h.now, by="op")
        assert not decision.allowed and "session live" in (decision.reason or ""), command
        assert h.engine.operator_command("CP1", command, h.now, by="op", force=True).allowed
    # another connector is not in use: unlock allowed there
    assert h.engine.operator_command("CP1", UnlockConnector(connector_id=2), h.now,
                                     by="op").allowed


def test_safety_fault_blocks_every_reset_even_forced() -> None:
    h = _ready()
    h.fault(1, "GroundFailure")
    h.advance(seconds=10)
    decision = h.engine.operator_command("CP1", HardReset(), h.now, by="op", force=True)
    assert not decision.allowed and "safety" in (decision.reason or "")
    # making the connector inoperative is still allowed (it is what the ladder does)
    assert h.engine.operator_command("CP1", ChangeAvailability(operative=False, connector_id=1),
                                     h.now, by="op").allowed


def test_decisions_are_in_the_station_timeline() -> None:
    h = _ready()
    h.engine.operator_command("CP1", SoftReset(), h.now, by="alice (t1)")
    h.status(1, "Charging")
    h.tx_start(1, "tx-1")
    h.engine.operator_command("CP1", UnlockConnector(connector_id=1), h.now, by="bob (t2)")
    kinds = [(e.kind, e.text) for e in h.engine.timeline("CP1")]
    assert ("operator", "SoftReset by alice (t1)") in kinds
    assert any(k == "operator_refused" and "bob (t2)" in t for k, t in kinds)
