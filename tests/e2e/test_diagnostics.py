"""The remediation ladder end to end, in detail: the real server with its diagnostics engine
on a shrunk clock, simulated chargers with scripted faults, both OCPP versions. The ticket's
evidence, safety rules and the grace period are checked here; every scenario's outcome is
checked by ``test_scenario_table.py``."""

from __future__ import annotations

import asyncio

import pytest

from csms.app import CentralSystem
from simulators.base import StationBase
from tests.conftest import MakeCentral
from tests.e2e.helpers import STATIONS, until

#: Production minutes become fractions of a second (grace 5 min -> 1.2 s).
TIME_SCALE = 0.004


def _actions(station: StationBase) -> list[str]:
    """The commands the station received, resets with their type."""
    names = []
    for command in station.received:
        if command.action == "Reset":
            names.append(f"Reset:{command.payload['type']}")
        else:
            names.append(command.action)
    return names



def _outcomes(central: CentralSystem, station_id: str) -> list[str | None]:
    assert central.diagnostics is not None and central.diagnostics.engine is not None
    return [r.outcome for r in central.diagnostics.finished_runs if r.station_id == station_id]


@pytest.fixture
async def ladder(make_central: MakeCentral) -> CentralSystem:
    return await make_central(diagnostics_time_scale=TIME_SCALE)


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_never_fixed_opens_exactly_one_ticket_with_evidence(
    ladder: CentralSystem, version: str
) -> None:
    station_id = f"NEVER-{version}"
    async with STATIONS[version](station_id, ladder.ocpp_url, scenario="never-fixed") as station:
        await until(lambda: bool(_tickets(ladder, station_id)), timeout=20)
        await asyncio.sleep(0.5)  # nothing more may happen
        received = _actions(station)
    soft, hard = ("Reset:Soft", "Reset:Hard") if version == "1.6" else (
        "Reset:OnIdle", "Reset:Immediate")
    remote = [a for a in received if a in {"UnlockConnector", soft, hard}]
    assert remote == ["UnlockConnector", soft, hard], received
    (ticket,) = await ladder.store.tickets(station_id)
    assert ticket.status == "open"
    assert ticket.fault_class == "connector_lock_failure"
    steps = [step["action"] for step in ticket.data["steps"]]
    assert {"unlock", "soft_reset", "hard_reset"} <= set(steps), steps
    assert "CX001" in ticket.data["vendor_codes"]
    assert ticket.data["sla"] is not None


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_safety_fault_is_never_reset_and_ticketed_p1(
    ladder: CentralSystem, version: str
) -> None:
    station_id = f"SAFE-{version}"
    async with STATIONS[version](station_id, ladder.ocpp_url, scenario="safety-fault") as station:
        await until(lambda: bool(_tickets(ladder, station_id)), timeout=20)
        await asyncio.sleep(0.5)
        received = _actions(station)
    assert not [a for a in received if a.startswith("Reset")], received
    assert "ChangeAvailability" in received
    inoperative = [c for c in station.received if c.action == "ChangeAvailability"]
    assert inoperative[0].payload.get("type", inoperative[0].payload.get(
        "operationalStatus")) == "Inoperative"
    (ticket,) = await ladder.store.tickets(station_id)
    assert ticket.priority == "P1"


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_fault_that_clears_in_the_grace_period_is_left_alone(
    ladder: CentralSystem, version: str
) -> None:
    station_id = f"SELF-{version}"
    async with STATIONS[version](station_id, ladder.ocpp_url, scenario="clears-by-itself",
                                 ) as station:
        await until(lambda: station.healed_by is not None, timeout=20)
        await asyncio.sleep(2.0)  # longer than the grace period
        received = _actions(station)
    assert not [a for a in received if a.startswith("Reset") or a == "UnlockConnector"]
    assert await ladder.store.tickets(station_id) == []


def _tickets(central: CentralSystem, station_id: str) -> list[object]:
    assert central.diagnostics is not None and central.diagnostics.engine is not None
    return [t for t in central.diagnostics.engine.tickets() if t.station_id == station_id]
