"""``GET /metrics`` after real traffic: simulated 1.6 and 2.0.1 chargers boot, charge, fail and
get fixed or ticketed by the diagnostics engine; the scraped values must match what the
simulators sent and received and what the database holds."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import timedelta

from csms.app import CentralSystem
from diagnostics.tickets import Ticket, TicketStatus, sla_breaches
from simulators import Station16, Station201
from simulators.base import StationBase
from tests.conftest import MakeCentral
from tests.e2e.helpers import until
from tests.metrics.helpers import Scrape, metrics_of, scrape

TIME_SCALE = 0.004
HEARTBEAT = 1.0
MESSAGES = "csms_ocpp_messages_total"


async def eventually(
    predicate: Callable[[], Awaitable[bool]], timeout: float = 15.0,
    describe: Callable[[], str] = lambda: "",
) -> None:
    """Poll an asynchronous ``predicate`` until it holds; fail after ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, (
            f"condition not met in time {describe()}")
        await asyncio.sleep(0.05)


def by_action(result: Scrape, version: str, direction: str, kind: str) -> Counter[str]:
    """Message counts of one version, direction and type, by action label."""
    counts: Counter[str] = Counter()
    for sample in result.samples(MESSAGES):
        labels = sample.labels
        if (labels["version"], labels["direction"], labels["type"]) == (version, direction, kind):
            counts[labels["action"]] += int(sample.value)
    return counts


def traffic_problems(result: Scrape, version: str, stations: list[StationBase]) -> list[str]:
    """How the server's counts differ from the CALLs and answers the simulators exchanged."""
    sent = Counter(m.action for s in stations for m in s.sent)
    received = Counter(c.action for s in stations for c in s.received)
    answered = Counter(c.action for s in stations for c in s.received
                       if c.response is not None or c.error_code is not None)
    our_answers = by_action(result, version, "out", "callresult") + by_action(
        result, version, "out", "callerror")
    their_answers = by_action(result, version, "in", "callresult") + by_action(
        result, version, "in", "callerror")
    checks = {
        "CALLs in": (by_action(result, version, "in", "call"), sent),
        "our answers": (our_answers, sent),
        "CALLs out": (by_action(result, version, "out", "call"), received),
        "their answers": (their_answers, answered),
    }
    return [f"{version} {name}: counted {counted}, simulators {expected}"
            for name, (counted, expected) in checks.items() if counted != expected]


async def charge(station: StationBase) -> None:
    """One session with two meter readings."""
    await station.start_session(connector=1, id_tag="TAG-METRICS")
    await station.send_meter_values(connector=1, energy_wh=1500.0, power_w=7000.0)
    await station.send_meter_values(connector=1, energy_wh=3000.0, power_w=7000.0)
    await station.stop_session(connector=1)


async def test_metrics_follow_a_fleet(make_central: MakeCentral) -> None:
    central = await make_central(diagnostics_time_scale=TIME_SCALE)
    runner = central.diagnostics
    assert runner is not None
    component = metrics_of(central)
    # Heartbeats every second: a station silent for 15 min (3.6 s at this scale) is probed.
    url, beat = central.ocpp_url, HEARTBEAT
    fixed = Station16("MET-FIX-16", url, scenario="fixed-by-unlock", heartbeat_interval=beat)
    safety = Station201("MET-SAFETY-201", url, scenario="safety-fault", heartbeat_interval=beat)
    driver16 = Station16("MET-DRIVE-16", url, heartbeat_interval=beat)
    driver201 = Station201("MET-DRIVE-201", url, heartbeat_interval=beat)
    by_version: dict[str, list[StationBase]] = {"1.6": [fixed, driver16],
                                                 "2.0.1": [safety, driver201]}
    try:
        for station in (fixed, safety, driver16, driver201):
            await station.start()
        await charge(driver16)
        await charge(driver201)

        problems: list[str] = ["not scraped yet"]

        async def settled() -> bool:
            if not any(r.station_id == fixed.station_id and r.outcome == "fixed"
                       for r in runner.finished_runs):
                return False
            if not await central.store.tickets(safety.station_id):
                return False
            result = await scrape(central)
            problems[:] = [problem for version, stations in by_version.items()
                           for problem in traffic_problems(result, version, stations)]
            if not result.value("csms_log_uploads_total", result="uploaded"):
                problems.append("no log uploaded")
            return not problems

        await eventually(settled, describe=lambda: "; ".join(problems))
        await component.refresh()
        result = await scrape(central)

        # OCPP traffic, beyond the exact match with the simulators' records.
        for version in by_version:
            assert result.value(MESSAGES, version=version, action="BootNotification",
                                direction="in", type="call") == 2
            assert result.value("csms_ocpp_connections_total", version=version) == 2
            assert result.value("csms_ocpp_request_duration_seconds_count", version=version,
                                action="BootNotification") == 2
        assert result.value(MESSAGES, version="1.6", action="MeterValues", direction="in",
                            type="call") == 2
        assert result.value(MESSAGES, version="2.0.1", action="TransactionEvent",
                            direction="in", type="call") == 4  # Started, 2 Updated, Ended
        unlock = {"version": "1.6", "action": "UnlockConnector"}
        assert result.value("csms_ocpp_call_duration_seconds_count", **unlock) == 1
        assert result.value("csms_ocpp_call_duration_seconds_bucket", le="+Inf", **unlock) == 1
        assert result.value("csms_ocpp_call_duration_seconds_sum", **unlock) > 0
        assert result.value("csms_ocpp_call_timeouts_total", **unlock) == 0

        # Diagnostics: one fix by unlock, one safety ticket (P1), logs uploaded.
        assert result.value("csms_diagnostics_runs_total", outcome="fixed") == 1
        assert result.total("csms_diagnostics_runs_total") == 1
        assert result.value("csms_remote_actions_total", action="UnlockConnector",
                            result="accepted", source="engine") == 1
        assert result.value("csms_remote_actions_total", action="ChangeAvailability",
                            result="accepted", source="engine") == 1
        assert result.value("csms_tickets_opened_total", priority="P1") == 1
        assert result.total("csms_tickets_opened_total") == 1
        assert result.value("csms_log_uploaded_bytes_total") > 0
        assert result.value("csms_log_uploads_total", result="failed") == 0

        # Gauges read from the database.
        stations = await central.store.list_stations()
        assert result.value("csms_connected_chargers") == 4
        assert result.total("csms_stations") == len(stations) == 4
        assert result.value("csms_stations", state="faulted") == 1
        assert result.value("csms_stations", state="available") == 3
        assert result.value("csms_stations", state="offline") == 0
        assert result.value("csms_tickets_open", priority="P1") == 1
        assert result.total("csms_tickets_open") == 1
        active_runs = await central.store.runs(active=True)
        assert result.value("csms_diagnostics_runs_active") == len(active_runs)
        assert result.value("csms_connectors", status="Faulted") >= 1
        assert result.value("csms_fleet_refresh_timestamp_seconds") > 0

        # No label carries a station id.
        for samples in result.families.values():
            for sample in samples:
                assert not any("MET-" in value for value in sample.labels.values()), sample

        await driver16.stop()
        await until(lambda: len(central.registry) == 3)

        async def recorded_offline() -> bool:
            return (await central.store.station_states())[driver16.station_id] == "offline"

        await eventually(recorded_offline)
        await component.refresh()
        result = await scrape(central)
        assert result.value("csms_connected_chargers") == 3
        assert result.value("csms_stations", state="offline") == 1
        assert result.value("csms_stations", state="available") == 2
    finally:
        for station in (fixed, safety, driver16, driver201):
            await station.stop()


async def test_sla_breaches_are_counted_once(make_central: MakeCentral) -> None:
    central = await make_central(diagnostics_time_scale=TIME_SCALE)
    component = metrics_of(central)
    await component.stop_refreshing()  # the test sets the clock of every refresh
    async with Station201("MET-SLA-201", central.ocpp_url, scenario="safety-fault"):
        await eventually(lambda: _has_ticket(central, "MET-SLA-201"))
    (record,) = await central.store.tickets("MET-SLA-201")
    ticket = Ticket.from_dict(record.data)
    assert ticket.sla is not None

    await component.refresh(now=ticket.opened_at)
    result = await scrape(central)
    assert result.total("csms_tickets_sla_breached") == 0
    assert result.total("csms_sla_breaches_total") == 0

    late = ticket.sla.response_by + timedelta(seconds=1)
    missed = set(sla_breaches(ticket, late))
    assert "response" in missed
    for _ in range(2):  # the second refresh sees the same breaches: nothing new to count
        await component.refresh(now=late)
        result = await scrape(central)
        for deadline in ("response", "on_site", "resolution"):
            expected = 1 if deadline in missed else 0
            assert result.value("csms_tickets_sla_breached", deadline=deadline) == expected
            assert result.value("csms_sla_breaches_total", deadline=deadline) == expected

    latest = ticket.sla.resolution_by + timedelta(seconds=1)
    await component.refresh(now=latest)
    result = await scrape(central)
    assert result.value("csms_sla_breaches_total", deadline="resolution") == 1
    assert result.value("csms_sla_breaches_total", deadline="response") == 1

    runner = central.diagnostics
    assert runner is not None
    await runner.change_ticket(ticket.ticket_id, TicketStatus.ACKNOWLEDGED, None, "test")
    await component.refresh(now=latest)
    result = await scrape(central)
    assert result.value("csms_tickets_sla_breached", deadline="response") == 0
    assert result.value("csms_tickets_sla_breached", deadline="resolution") == 1
    assert result.value("csms_sla_breaches_total", deadline="response") == 1


async def _has_ticket(central: CentralSystem, station_id: str) -> bool:
    return bool(await central.store.tickets(station_id))
