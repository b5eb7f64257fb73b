"""Every named fault scenario on both OCPP versions against the mini CSMS."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest

from simulators import Behaviour, StationBase
from simulators import cli as sim_cli
from simulators.fleet import Fleet
from simulators.scenarios import (
    SCENARIOS,
    Fault,
    Scenario,
    ScenarioError,
    get_scenario,
    load_scenarios,
    safety_fault,
)
from tests.simulators.conftest import (
    Event,
    FtpReceiver,
    MiniCsms,
    StationFactory,
    Status,
    UploadServer,
    actions,
    ask_raw,
    availability_payload,
    eventually,
    last_status,
    log_request,
    log_statuses,
    notify_events,
    reset_payload,
    statuses,
    unlock_payload,
)

PROTOCOLS = ["1.6", "2.0.1"]
TIMESTAMPED = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ", re.M)

REQUIRED = [
    "fixed-by-unlock", "fixed-by-soft-reset", "fixed-by-hard-reset", "never-fixed",
    "safety-fault", "clears-by-itself", "flapping", "goes-offline", "boot-loop",
    "log-upload-http", "log-upload-ftp", "upload-fails", "final-log-status-never-sent",
    "reset-rejected", "command-times-out", "notify-before-result",
]


# ---------------------------------------------------------------------- helpers


async def started(make_station: StationFactory, protocol: str,
                  scenario: Scenario | str, **kwargs: Any) -> StationBase:
    st = make_station(protocol, scenario=scenario, **kwargs)
    await st.start()
    return st


def faulted(protocol: str, code: str, vendor: str | None) -> Status:
    if protocol == "1.6":
        return Status(1, "Faulted", code, vendor)
    return Status(1, "Faulted")


def available(protocol: str) -> Status:
    return Status(1, "Available", "NoError") if protocol == "1.6" else Status(1, "Available")


async def command(csms: MiniCsms, action: str, payload: dict[str, Any],
                  timeout: float = 3.0) -> dict[str, Any] | None:
    """Send a command on the current connection; the CALLRESULT payload (None: timeout)."""
    answer = await ask_raw(csms.chargers["CP1"], action, payload, timeout=timeout)
    return answer.payload


async def reset_and_wait(csms: MiniCsms, st: StationBase, protocol: str, hard: bool) -> None:
    boots = st.boot_count
    assert await command(csms, "Reset", reset_payload(protocol, hard)) == {"status": "Accepted"}
    await eventually(lambda: st.boot_count == boots + 1 and st.booted.is_set())


async def wait_status(csms: MiniCsms, expected: Status, after: int = 0) -> None:
    """Wait until ``expected`` was reported for its connector after the first ``after``
    statuses."""
    await eventually(lambda: expected in statuses(csms)[after:])


def last_event(csms: MiniCsms) -> Event:
    return notify_events(csms)[-1]


# ---------------------------------------------------------------------- registry and API


def test_registry_has_every_required_scenario() -> None:
    assert set(REQUIRED) <= set(SCENARIOS)
    for name, sc in SCENARIOS.items():
        assert sc.name == name and sc.description
    assert get_scenario("boot-loop") is SCENARIOS["boot-loop"]
    with pytest.raises(ScenarioError, match="known: fixed-by-unlock"):
        get_scenario("nope")


def test_scenario_data_round_trip_and_validation(tmp_path: Path) -> None:
    sc = SCENARIOS["flapping"].with_(returns_after=0.5, returns=1, healed_by=["soft_reset"])
    assert (sc.returns_after, sc.returns, sc.healed_by) == (0.5, 1, frozenset({"soft_reset"}))
    assert Scenario.from_dict(json.loads(json.dumps(sc.to_dict()))) == sc
    bad: list[dict[str, Any]] = [
        {"healed_by": ["prayer"]}, {"modes": {"Reset": "maybe"}}, {"upload": "sometimes"},
        {"offline_mode": "asleep"}, {"upload_protocol": "sftp"}, {"clears_after": "soon"},
        {"reboot_times": 1.5}, {"clears_after": -1}, {"notify_before_result": "yes"},
        {"colour": "red"}, {"fault": {"error_code": "X", "colour": "red"}},
        {"inoperative_status": "Charging"}, {"fault": {"error_code": "X", "connector": 0}},
    ]
    for change in bad:
        with pytest.raises(ScenarioError):
            SCENARIOS["never-fixed"].with_(**change)
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"ci-lock": {
        "description": "lock failure fixed by availability cycle",
        "fault": {"error_code": "ConnectorLockFailure", "vendor_code": "CX001"},
        "healed_by": "availability"}}))
    try:
        (mine,) = load_scenarios(path)
        assert SCENARIOS["ci-lock"] is mine and mine.healed_by == {"availability"}
        assert mine.fault == Fault("ConnectorLockFailure", "CX001")
    finally:
        SCENARIOS.pop("ci-lock", None)


async def test_apply_checks_connector_and_keeps_behaviour(make_station: StationFactory) -> None:
    with pytest.raises(ScenarioError):
        make_station("1.6", connectors=1,
                     scenario=Scenario("x", fault=Fault("OtherError", connector=2)))
    shared = Behaviour(modes={"ClearCache": "reject"})
    st = make_station("1.6", behaviour=shared, scenario="reset-rejected")
    assert st.behaviour.modes == {"ClearCache": "reject", "Reset": "reject"}
    assert shared.modes == {"ClearCache": "reject"}  # the caller's object is not changed
    assert st.faults == {1: "InternalError"}
    run = st.scenario_run
    assert run is not None
    with pytest.raises(RuntimeError):
        SCENARIOS["never-fixed"].apply(st)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("name", [n for n, s in SCENARIOS.items() if s.fault is not None])
async def test_fault_reported_at_boot(
    csms: MiniCsms, make_station: StationFactory, protocol: str, name: str
) -> None:
    sc = SCENARIOS[name]
    assert sc.fault is not None
    await started(make_station, protocol, sc)
    await wait_status(csms, faulted(protocol, sc.fault.error_code, sc.fault.vendor_code))
    if protocol == "2.0.1":
        event = last_event(csms)
        assert (event.tech_code, event.cleared, event.evse) == (sc.fault.vendor_code, False, 1)
        assert event.component == (sc.fault.component or {
            "ConnectorLockFailure": "ConnectorPlugRetentionLock",
            "InternalError": "ChargingStation",
            "OverCurrentFailure": "OverCurrentProtection",
            "PowerSwitchFailure": "PowerContactor",
            "GroundFailure": "RCD",
            "HighTemperature": "TemperatureSensor",
        }[sc.fault.error_code])


# ---------------------------------------------------------------------- healing


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_fixed_by_unlock(csms: MiniCsms, make_station: StationFactory, protocol: str) -> None:
    st = await started(make_station, protocol, "fixed-by-unlock")
    await reset_and_wait(csms, st, protocol, hard=False)  # a reset does not help
    assert statuses(csms).count(faulted(protocol, "ConnectorLockFailure", "CX001")) == 2
    assert st.healed_by is None
    n = len(statuses(csms))
    assert await command(csms, "UnlockConnector", unlock_payload(protocol)) == {
        "status": "Unlocked"}
    await wait_status(csms, available(protocol), n)
    assert st.healed_by == "unlock" and st.heals == ["unlock"] and not st.faults
    if protocol == "2.0.1":
        await eventually(lambda: len(notify_events(csms)) == 3)
        events = notify_events(csms)
        assert [(e.component, e.variable, e.tech_code, e.cleared) for e in events] == [
            ("ConnectorPlugRetentionLock", "Problem", "CX001", False),
            ("ConnectorPlugRetentionLock", "Problem", "CX001", False),
            ("ConnectorPlugRetentionLock", "Problem", None, True),
        ]
    await reset_and_wait(csms, st, protocol, hard=True)  # stays healthy across reboots
    assert last_status(csms) == available(protocol)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_fixed_by_soft_reset(
    csms: MiniCsms, make_station: StationFactory, protocol: str
) -> None:
    st = await started(make_station, protocol, "fixed-by-soft-reset")
    fault = faulted(protocol, "InternalError", "SIM-INT-101")
    await wait_status(csms, fault)
    assert await command(csms, "UnlockConnector", unlock_payload(protocol)) == {
        "status": "Unlocked"}
    await eventually(lambda: statuses(csms).count(fault) == 2)  # re-reported: did not help
    assert st.healed_by is None
    await reset_and_wait(csms, st, protocol, hard=False)
    assert last_status(csms) == available(protocol)
    assert st.healed_by == "soft_reset" and st.reset_count == 1
    if protocol == "2.0.1":
        assert [(e.component, e.cleared) for e in notify_events(csms)] == [
            ("ChargingStation", False), ("ChargingStation", False), ("ChargingStation", True)]
        boot = csms.chargers["CP1"].payloads("BootNotification")[-1]
        assert boot["reason"] == "RemoteReset"


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_fixed_by_hard_reset(
    csms: MiniCsms, make_station: StationFactory, protocol: str
) -> None:
    st = await started(make_station, protocol, "fixed-by-hard-reset")
    fault = faulted(protocol, "InternalError", "SIM-INT-102")
    await reset_and_wait(csms, st, protocol, hard=False)
    assert statuses(csms).count(fault) == 2 and last_status(csms) == fault
    assert st.healed_by is None
    await reset_and_wait(csms, st, protocol, hard=True)
    assert last_status(csms) == available(protocol)
    assert st.healed_by == "hard_reset" and st.boot_count == 3
    if protocol == "2.0.1":
        events = notify_events(csms)
        assert [(e.component, e.variable, e.cleared) for e in events] == [
            ("Controller", "Problem", False)] * 2 + [("Controller", "Problem", True)]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_never_fixed(csms: MiniCsms, make_station: StationFactory, protocol: str) -> None:
    st = await started(make_station, protocol, "never-fixed")
    fault = faulted(protocol, "ConnectorLockFailure", "CX001")
    await wait_status(csms, fault)
    assert await command(csms, "UnlockConnector", unlock_payload(protocol)) == {
        "status": "Unlocked"}
    for operative in (False, True):
        payload = availability_payload(protocol, 1, operative)
        assert await command(csms, "ChangeAvailability", payload) == {"status": "Accepted"}
    await eventually(lambda: statuses(csms).count(fault) == 4)
    await reset_and_wait(csms, st, protocol, hard=False)
    await reset_and_wait(csms, st, protocol, hard=True)
    assert statuses(csms).count(fault) == 6 and last_status(csms) == fault
    assert st.healed_by is None and st.heals == [] and st.faults == {1: "ConnectorLockFailure"}
    if protocol == "2.0.1":
        assert not any(e.cleared for e in notify_events(csms))


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_safety_fault(csms: MiniCsms, make_station: StationFactory, protocol: str) -> None:
    st = await started(make_station, protocol, "safety-fault")
    fault = faulted(protocol, "OverCurrentFailure", "CX004")
    await wait_status(csms, fault)
    inoperative = availability_payload(protocol, 1, operative=False)
    assert await command(csms, "ChangeAvailability", inoperative) == {"status": "Accepted"}
    await eventually(lambda: statuses(csms).count(fault) == 2)  # keeps Faulted
    await reset_and_wait(csms, st, protocol, hard=True)
    assert last_status(csms) == fault and st.inoperative == {1}
    if protocol == "2.0.1":
        event = last_event(csms)
        assert (event.component, event.variable, event.tech_code, event.cleared) == (
            "OverCurrentProtection", "Tripped", "CX004", False)
    assert st.healed_by is None


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_safety_fault_reported_unavailable_when_inoperative(
    csms: MiniCsms, make_station: StationFactory, protocol: str
) -> None:
    sc = safety_fault("welded-contactor", inoperative_status="Unavailable")
    st = await started(make_station, protocol, sc)
    await wait_status(csms, faulted(protocol, "PowerSwitchFailure", "SIM-PSW-201"))
    await command(csms, "ChangeAvailability", availability_payload(protocol, 0, False))
    expected = (Status(1, "Unavailable", "PowerSwitchFailure", "SIM-PSW-201")
                if protocol == "1.6" else Status(1, "Unavailable"))
    await wait_status(csms, expected)
    if protocol == "2.0.1":
        assert last_event(csms).component == "PowerContactor"
        assert not any(e.cleared for e in notify_events(csms))
    assert st.faults == {1: "PowerSwitchFailure"}


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_clears_by_itself(
    csms: MiniCsms, make_station: StationFactory, protocol: str
) -> None:
    sc = SCENARIOS["clears-by-itself"].with_(clears_after=0.3)
    st = await started(make_station, protocol, sc)
    await wait_status(csms, faulted(protocol, "HighTemperature", "CX003"))
    assert st.faults
    await wait_status(csms, available(protocol))
    assert st.healed_by == "self" and not st.faults
    assert "Reset" not in [c.action for c in st.received]
    if protocol == "2.0.1":
        await eventually(lambda: len(notify_events(csms)) == 2)
        assert [(e.component, e.cleared) for e in notify_events(csms)] == [
            ("TemperatureSensor", False), ("TemperatureSensor", True)]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_flapping(csms: MiniCsms, make_station: StationFactory, protocol: str) -> None:
    sc = SCENARIOS["flapping"].with_(returns_after=0.2)
    st = await started(make_station, protocol, sc)
    fault = faulted(protocol, "InternalError", "SIM-INT-103")
    for round_ in (1, 2):
        await reset_and_wait(csms, st, protocol, hard=False)
        assert last_status(csms) == available(protocol)
        await eventually(lambda: last_status(csms) == fault)  # comes back by itself
        assert st.scenario_run is not None and st.scenario_run.returned == round_
    assert st.heals == ["soft_reset", "soft_reset"] and st.faults
    if protocol == "2.0.1":
        await eventually(lambda: len(notify_events(csms)) == 5)
        assert [e.cleared for e in notify_events(csms)] == [False, True, False, True, False]


# ---------------------------------------------------------------------- connection trouble


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_goes_offline_for_good(
    csms: MiniCsms, make_station: StationFactory, protocol: str
) -> None:
    sc = SCENARIOS["goes-offline"].with_(offline_after=0.1)
    st = await started(make_station, protocol, sc)
    await eventually(lambda: not st.connected)
    await asyncio.sleep(0.3)
    assert len(csms.connections) == 1 and not st.connected  # stays away
    assert st.scenario_run is not None and st.scenario_run.went_offline


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("mode", ["drop", "silent"])
async def test_goes_offline_and_comes_back(
    csms: MiniCsms, make_station: StationFactory, protocol: str, mode: str
) -> None:
    sc = SCENARIOS["goes-offline"].with_(offline_after=0.1, offline_for=0.4, offline_mode=mode)
    st = await started(make_station, protocol, sc)
    if mode == "silent":
        await eventually(lambda: st.scenario_run is not None and st.scenario_run.went_offline)
        assert st.connected  # the socket stays open, but nothing is answered
        probe = await ask_raw(csms.chargers["CP1"], "TriggerMessage",
                              {"requestedMessage": "Heartbeat"}, timeout=0.2)
        assert probe.kind == "timeout"
    else:
        await eventually(lambda: not st.connected)
    await csms.wait(lambda: len(csms.connections) == 2, timeout=3)
    await eventually(lambda: st.booted.is_set())
    assert st.boot_count == 1 and st.connection_count == 2  # reconnect, no reboot
    answer = await command(csms, "TriggerMessage", {"requestedMessage": "Heartbeat"})
    assert answer == {"status": "Accepted"}


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_boot_loop(csms: MiniCsms, make_station: StationFactory, protocol: str) -> None:
    sc = SCENARIOS["boot-loop"].with_(reboot_every=0.15, reboot_times=2)
    st = await started(make_station, protocol, sc)
    await csms.wait_action("CP1", "BootNotification", count=3)
    await eventually(lambda: st.boot_count == 3 and st.booted.is_set())
    boots = csms.chargers["CP1"].payloads("BootNotification")
    if protocol == "2.0.1":
        assert [b["reason"] for b in boots] == ["PowerUp", "Watchdog", "Watchdog"]
    assert len(csms.connections) == 3
    assert st.scenario_run is not None and st.scenario_run.loop_reboots == 2
    await asyncio.sleep(0.3)
    assert st.boot_count == 3  # K reboots, then it stays up


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_boot_loop_forever_stopped_by_hard_reset_when_declared(
    csms: MiniCsms, make_station: StationFactory, protocol: str
) -> None:
    sc = SCENARIOS["boot-loop"].with_(reboot_every=0.3, healed_by=["hard_reset"])
    st = await started(make_station, protocol, sc)
    await reset_and_wait(csms, st, protocol, hard=True)
    assert st.healed_by == "hard_reset"
    boots = st.boot_count
    await asyncio.sleep(0.5)
    assert st.boot_count == boots


# ---------------------------------------------------------------------- log uploads


def assert_realistic_log(body: bytes, *phrases: str) -> None:
    text = body.decode()
    assert "csms-sim log of CP1" in text
    for phrase in phrases:
        assert phrase in text, phrase
    assert len(TIMESTAMPED.findall(text)) >= 3


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_log_upload_http(
    csms: MiniCsms, make_station: StationFactory, upload_server: UploadServer,
    ftp_server: FtpReceiver, protocol: str,
) -> None:
    await started(make_station, protocol, "log-upload-http")
    action, payload = log_request(protocol, f"http://127.0.0.1:{upload_server.port}/up/")
    answer = await command(csms, action, payload)
    assert answer is not None
    await eventually(lambda: len(log_statuses(csms, protocol)) == 2)
    assert log_statuses(csms, protocol) == ["Uploading", "Uploaded"]
    method, path, body = upload_server.received[0]
    assert method == "PUT" and path.startswith("/up/")
    assert_realistic_log(body, "watchdog reset", "InternalError")
    # this station uploads over HTTP only: an FTP location fails at once
    action, payload = log_request(protocol, ftp_server.url(), request_id=8)
    await command(csms, action, payload)
    await eventually(lambda: len(log_statuses(csms, protocol)) == 4)
    failed = "UploadFailed" if protocol == "1.6" else "UploadFailure"
    assert log_statuses(csms, protocol)[2:] == ["Uploading", failed]
    assert ftp_server.files() == {}


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_log_upload_ftp(
    csms: MiniCsms, make_station: StationFactory, upload_server: UploadServer,
    ftp_server: FtpReceiver, protocol: str,
) -> None:
    st = await started(make_station, protocol, SCENARIOS["log-upload-ftp"].with_(
        log_text="ERROR lock motor timeout on connector {connector}\nCRITICAL RCD trip"))
    action, payload = log_request(protocol, ftp_server.url())
    answer = await command(csms, action, payload)
    assert answer is not None
    await eventually(lambda: len(log_statuses(csms, protocol)) == 2)
    assert log_statuses(csms, protocol) == ["Uploading", "Uploaded"]
    ((name, body),) = ftp_server.files().items()
    filename = answer.get("fileName", answer.get("filename"))
    assert name == f"logs/{filename}"
    assert_realistic_log(body, "ERROR lock motor timeout on connector 1", "CRITICAL RCD trip")
    action, payload = log_request(
        protocol, f"http://127.0.0.1:{upload_server.port}/up/", request_id=8)
    await command(csms, action, payload)
    await eventually(lambda: len(log_statuses(csms, protocol)) == 4)
    assert log_statuses(csms, protocol)[-1] in ("UploadFailed", "UploadFailure")
    assert upload_server.received == [] and [ok for _, ok in st.uploads] == [True, False]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_upload_fails(
    csms: MiniCsms, make_station: StationFactory, upload_server: UploadServer, protocol: str
) -> None:
    st = await started(make_station, protocol, "upload-fails")
    action, payload = log_request(protocol, f"http://127.0.0.1:{upload_server.port}/up/")
    payload["retries"] = 3
    await command(csms, action, payload)
    await eventually(lambda: len(log_statuses(csms, protocol)) == 2)
    failed = "UploadFailed" if protocol == "1.6" else "UploadFailure"
    assert log_statuses(csms, protocol) == ["Uploading", failed]
    assert upload_server.received == [] and len(st.uploads) == 1


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("upload", ["ok", "hang"])
async def test_final_log_status_never_sent(
    csms: MiniCsms, make_station: StationFactory, upload_server: UploadServer, protocol: str,
    upload: str,
) -> None:
    sc = SCENARIOS["final-log-status-never-sent"].with_(upload=upload)
    st = await started(make_station, protocol, sc)
    action, payload = log_request(protocol, f"http://127.0.0.1:{upload_server.port}/up/")
    await command(csms, action, payload)
    await eventually(lambda: len(log_statuses(csms, protocol)) == 1)
    if upload == "ok":
        await eventually(lambda: len(upload_server.received) == 1)
    await asyncio.sleep(0.2)
    assert log_statuses(csms, protocol) == ["Uploading"]
    assert len(upload_server.received) == (1 if upload == "ok" else 0)
    # asked later, the station still says it is uploading
    trigger = ("DiagnosticsStatusNotification" if protocol == "1.6"
               else "LogStatusNotification")
    await command(csms, "TriggerMessage", {"requestedMessage": trigger})
    await eventually(lambda: len(log_statuses(csms, protocol)) == 2)
    assert log_statuses(csms, protocol)[-1] == "Uploading" and st.connected


# ---------------------------------------------------------------------- answers


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_reset_rejected(csms: MiniCsms, make_station: StationFactory, protocol: str) -> None:
    st = await started(make_station, protocol, "reset-rejected")
    fault = faulted(protocol, "InternalError", "SIM-INT-101")
    await wait_status(csms, fault)
    for hard in (False, True):
        assert await command(csms, "Reset", reset_payload(protocol, hard)) == {
            "status": "Rejected"}
    assert st.boot_count == 1 and st.reset_count == 0 and st.connected
    assert last_status(csms) == fault and st.healed_by is None


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_command_times_out(
    csms: MiniCsms, make_station: StationFactory, protocol: str
) -> None:
    st = await started(make_station, protocol, "command-times-out")
    fault = faulted(protocol, "ConnectorLockFailure", "CX001")
    await wait_status(csms, fault)
    assert await command(csms, "UnlockConnector", unlock_payload(protocol), timeout=0.2) is None
    assert await command(csms, "Reset", reset_payload(protocol, True), timeout=0.2) is None
    assert [c.action for c in st.received] == ["UnlockConnector", "Reset"]
    assert all(c.response is None and c.error_code is None for c in st.received)
    answer = await command(csms, "TriggerMessage", {"requestedMessage": "StatusNotification",
                                                      **({"connectorId": 1} if protocol == "1.6"
                                                         else {"evse": {"id": 1}})})
    assert answer == {"status": "Accepted"}  # other commands still answered
    await eventually(lambda: statuses(csms).count(fault) == 2)
    assert st.boot_count == 1 and st.healed_by is None


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_notify_before_result(
    csms: MiniCsms, make_station: StationFactory, protocol: str, upload_server: UploadServer
) -> None:
    st = await started(make_station, protocol, "notify-before-result")
    await wait_status(csms, faulted(protocol, "ConnectorLockFailure", "CX001"))
    cp = csms.chargers["CP1"]
    start = len(cp.events)
    assert await command(csms, "UnlockConnector", unlock_payload(protocol)) == {
        "status": "Unlocked"}
    events = cp.events[start:]
    result_at = next(i for i, e in enumerate(events) if e.startswith("result:"))
    before = events[:result_at]
    assert "call:StatusNotification" in before
    if protocol == "2.0.1":
        assert "call:NotifyEvent" in before and last_event(csms).cleared is True
    assert last_status(csms) == available(protocol) and st.healed_by == "unlock"
    start = len(cp.events)
    action, payload = log_request(protocol, f"http://127.0.0.1:{upload_server.port}/up/")
    await command(csms, action, payload)
    events = cp.events[start:]
    result_at = next(i for i, e in enumerate(events) if e.startswith("result:"))
    note = "DiagnosticsStatusNotification" if protocol == "1.6" else "LogStatusNotification"
    assert f"call:{note}" in events[:result_at]


# ---------------------------------------------------------------------- fleet and CLI


async def test_cli_scenario_on_every_station(
    csms: MiniCsms, capsys: pytest.CaptureFixture[str]
) -> None:
    args = sim_cli.build_parser().parse_args([
        "--protocol", "2.0.1", "--count", "2", "--url", csms.url, "--duration", "0.6",
        "--summary-interval", "5", "--scenario", "clears-by-itself",
        "--scenario-set", "clears_after=0.2",
    ])
    assert await sim_cli.run(args) == 0
    out = capsys.readouterr().out
    assert "faulted=0 healed=2" in out and "done: 2/2 stations booted" in out
    for station_id in ("SIM-001", "SIM-002"):
        events = notify_events(csms, station_id)
        assert [(e.component, e.cleared) for e in events] == [
            ("TemperatureSensor", False), ("TemperatureSensor", True)]


def test_cli_list_and_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert sim_cli.main(["--list-scenarios"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(SCENARIOS)
    assert all(len(line.split(maxsplit=1)) == 2 for line in lines)
    assert sim_cli.main(["--scenario", "nope"]) == 2
    assert sim_cli.main(["--scenario", "flapping", "--scenario-set", "returns_after"]) == 2
    assert sim_cli.main(["--scenario-set", "returns_after=1"]) == 2
    assert "needs --scenario" in capsys.readouterr().err
    path = tmp_path / "s.json"
    path.write_text(json.dumps([{"name": "ci-x", "description": "from CI",
                                 "fault": {"error_code": "ReaderFailure"}}]))
    try:
        assert sim_cli.main(["--scenario-file", str(path), "--list-scenarios"]) == 0
        assert "ci-x" in capsys.readouterr().out
    finally:
        SCENARIOS.pop("ci-x", None)


async def test_fleet_with_scenario(csms: MiniCsms) -> None:
    fleet = Fleet("1.6", 2, csms.url, reconnect_delay=0.05, scenario="never-fixed")
    try:
        assert await fleet.start() == 2
        assert fleet.faulted == 2 and fleet.healed == 0
        assert {st.scenario_run is not None for st in fleet.stations} == {True}
        runs = {id(st.scenario_run) for st in fleet.stations}
        assert len(runs) == 2  # one run per station
        assert "faulted=2 healed=0" in fleet.summary()
        assert "StatusNotification" in actions(csms, "SIM-001")
    finally:
        await fleet.stop()
