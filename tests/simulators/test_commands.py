"""Every diagnostics command answered per Behaviour mode, follow-up messages and quirks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from simulators import Behaviour, Mode, Station16, Station201, StationBase
from tests.simulators.conftest import Answer, MiniCsms, StationFactory, UploadServer, ask_raw

Check = Callable[[Answer], bool]


def status(value: str) -> Check:
    return lambda a: a.kind == "result" and a.payload is not None and a.payload.get(
        "status"
    ) == value


def error(code: str) -> Check:
    return lambda a: a.kind == "error" and a.code == code


def result(pred: Callable[[dict[str, Any]], bool]) -> Check:
    return lambda a: a.kind == "result" and a.payload is not None and pred(a.payload)


LOG = {"logType": "DiagnosticsLog", "requestId": 7, "log": {"remoteLocation": "http://x/"}}

# action, payload, accept, reject, not_supported  (Reset last: it reconnects)
CASES_16: list[tuple[str, dict[str, Any], Check, Check, Check]] = [
    ("UnlockConnector", {"connectorId": 1}, status("Unlocked"), status("UnlockFailed"),
     status("NotSupported")),
    ("ChangeAvailability", {"connectorId": 1, "type": "Inoperative"}, status("Accepted"),
     status("Rejected"), error("NotSupported")),
    ("TriggerMessage", {"requestedMessage": "Heartbeat"}, status("Accepted"),
     status("Rejected"), status("NotImplemented")),
    ("ExtendedTriggerMessage", {"requestedMessage": "LogStatusNotification"},
     status("Accepted"), status("Rejected"), status("NotImplemented")),
    ("GetConfiguration", {"key": ["HeartbeatInterval"]},
     result(lambda p: p["configurationKey"][0]["key"] == "HeartbeatInterval"),
     result(lambda p: p == {"unknownKey": ["HeartbeatInterval"]}), error("NotSupported")),
    ("ChangeConfiguration", {"key": "MeterValueSampleInterval", "value": "30"},
     status("Accepted"), status("Rejected"), status("NotSupported")),
    ("GetDiagnostics", {"location": "http://127.0.0.1/x/"},
     result(lambda p: p["fileName"].startswith("diagnostics-CP1-")), result(lambda p: p == {}),
     error("NotSupported")),
    ("GetLog", LOG, result(lambda p: p["status"] == "Accepted" and "filename" in p),
     status("Rejected"), error("NotSupported")),
    ("RemoteStartTransaction", {"idTag": "TAG", "connectorId": 2}, status("Accepted"),
     status("Rejected"), error("NotSupported")),
    ("RemoteStopTransaction", {"transactionId": 999}, status("Rejected"), status("Rejected"),
     error("NotSupported")),
    ("ClearCache", {}, status("Accepted"), status("Rejected"), error("NotSupported")),
    ("DataTransfer", {"vendorId": "com.example"}, status("UnknownVendorId"),
     status("Rejected"), status("UnknownVendorId")),
    ("Reset", {"type": "Soft"}, status("Accepted"), status("Rejected"), error("NotSupported")),
]

VAR = {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
CASES_201: list[tuple[str, dict[str, Any], Check, Check, Check]] = [
    ("UnlockConnector", {"evseId": 1, "connectorId": 1}, status("Unlocked"),
     status("UnlockFailed"), error("NotSupported")),
    ("ChangeAvailability", {"operationalStatus": "Inoperative", "evse": {"id": 1}},
     status("Accepted"), status("Rejected"), error("NotSupported")),
    ("TriggerMessage", {"requestedMessage": "Heartbeat"}, status("Accepted"),
     status("Rejected"), status("NotImplemented")),
    ("GetVariables", {"getVariableData": [VAR]},
     result(lambda p: p["getVariableResult"][0]["attributeStatus"] == "Accepted"),
     result(lambda p: p["getVariableResult"][0]["attributeStatus"] == "Rejected"),
     error("NotSupported")),
    ("SetVariables", {"setVariableData": [{**VAR, "attributeValue": "120"}]},
     result(lambda p: p["setVariableResult"][0]["attributeStatus"] == "Accepted"),
     result(lambda p: p["setVariableResult"][0]["attributeStatus"] == "Rejected"),
     error("NotSupported")),
    ("GetLog", LOG, result(lambda p: p["status"] == "Accepted" and "filename" in p),
     status("Rejected"), error("NotSupported")),
    ("GetBaseReport", {"requestId": 3, "reportBase": "FullInventory"}, status("Accepted"),
     status("Rejected"), status("NotSupported")),
    ("RequestStartTransaction",
     {"idToken": {"idToken": "TAG", "type": "Central"}, "remoteStartId": 5, "evseId": 2},
     result(lambda p: p["status"] == "Accepted" and len(p["transactionId"]) == 36),
     status("Rejected"), error("NotSupported")),
    ("RequestStopTransaction", {"transactionId": "nope"}, status("Rejected"),
     status("Rejected"), error("NotSupported")),
    ("ClearCache", {}, status("Accepted"), status("Rejected"), error("NotSupported")),
    ("DataTransfer", {"vendorId": "com.example"}, status("UnknownVendorId"),
     status("Rejected"), status("UnknownVendorId")),
    ("Reset", {"type": "Immediate"}, status("Accepted"), status("Rejected"),
     error("NotSupported")),
]


async def fake_upload(target: str, data: bytes) -> bool:
    return True


@pytest.mark.parametrize("protocol", ["1.6", "2.0.1"])
@pytest.mark.parametrize("mode", ["accept", "reject", "not_supported", "call_error"])
async def test_command_matrix(
    csms: MiniCsms, make_station: StationFactory, protocol: str, mode: str
) -> None:
    st = make_station(protocol, behaviour=Behaviour(default_mode=mode), uploader=fake_upload)
    await st.start()
    cp = csms.chargers["CP1"]
    cases = CASES_16 if protocol == "1.6" else CASES_201
    index = {"accept": 2, "reject": 3, "not_supported": 4}
    for case in cases:
        action, payload = case[0], case[1]
        answer = await ask_raw(cp, action, payload)
        if mode == "call_error":
            assert answer == Answer("error", code="InternalError"), action
        else:
            check: Check = case[index[mode]]  # type: ignore[assignment]
            assert check(answer), (action, answer)
        received = await st.wait_for_command(action)
        assert received.payload == payload
        assert received.response == answer.payload
        assert received.error_code == answer.code


@pytest.mark.parametrize("protocol", ["1.6", "2.0.1"])
async def test_timeout_and_delay_modes(
    csms: MiniCsms, make_station: StationFactory, protocol: str
) -> None:
    behaviour = Behaviour(
        modes={"ClearCache": "timeout", "Reset": Mode.TIMEOUT}, delays={"DataTransfer": 0.2}
    )
    st = make_station(protocol, behaviour=behaviour)
    await st.start()
    cp = csms.chargers["CP1"]
    reset = {"type": "Soft"} if protocol == "1.6" else {"type": "OnIdle"}
    assert (await ask_raw(cp, "ClearCache", {}, timeout=0.15)).kind == "timeout"
    assert (await ask_raw(cp, "Reset", reset, timeout=0.15)).kind == "timeout"
    loop = asyncio.get_running_loop()
    began = loop.time()
    answer = await ask_raw(cp, "DataTransfer", {"vendorId": "v"})
    assert answer.payload == {"status": "UnknownVendorId"}
    assert loop.time() - began >= 0.19
    assert st.boot_count == 1 and st.connected  # nothing happened on the timed-out Reset


@pytest.mark.parametrize("protocol", ["1.6", "2.0.1"])
async def test_unknown_and_malformed_calls(
    csms: MiniCsms, make_station: StationFactory, protocol: str
) -> None:
    st = make_station(protocol)
    await st.start()
    cp = csms.chargers["CP1"]
    assert await ask_raw(cp, "FooBar", {}) == Answer("error", code="NotImplemented")
    known = "CancelReservation" if protocol == "1.6" else "GetTransactionStatus"
    payload = {"reservationId": 1} if protocol == "1.6" else {}
    assert await ask_raw(cp, known, payload) == Answer("error", code="NotSupported")
    assert await ask_raw(cp, "Reset", {}) == Answer("error", code="ProtocolError")
    bad = await ask_raw(cp, "Reset", {"type": "Sideways"})
    assert bad.code == ("FormationViolation" if protocol == "1.6" else "FormatViolation")
    assert st.connected and st.boot_count == 1


# ---------------------------------------------------------------------- follow-up messages


def result_index(events: list[str], action_call: str, prefix: str = "result:") -> tuple[int, int]:
    """Index of the first ``call:<action_call>`` and of the first result frame."""
    call_at = events.index(f"call:{action_call}")
    result_at = next(i for i, e in enumerate(events) if e.startswith(prefix))
    return call_at, result_at


@pytest.mark.parametrize("before", [False, True])
async def test_notify_before_result_ordering(
    csms: MiniCsms, make_station: StationFactory, before: bool
) -> None:
    st = make_station("1.6", behaviour=Behaviour(notify_before_result=before),
                      uploader=fake_upload)
    await st.start()
    cp = csms.chargers["CP1"]
    start = len(cp.events)
    answer = await ask_raw(cp, "GetDiagnostics", {"location": "ftp://127.0.0.1/d/"})
    assert answer.payload is not None and "fileName" in answer.payload
    notes = await csms.wait_action("CP1", "DiagnosticsStatusNotification", count=2)
    assert [n["status"] for n in notes] == ["Uploading", "Uploaded"]
    call_at, result_at = result_index(cp.events[start:], "DiagnosticsStatusNotification")
    assert (call_at < result_at) is before


@pytest.mark.parametrize("protocol", ["1.6", "2.0.1"])
async def test_get_log_quirks(csms: MiniCsms, make_station: StationFactory, protocol: str) -> None:
    behaviour = Behaviour(duplicate_progress=True, skip_final_log_status=True)
    st = make_station(protocol, behaviour=behaviour, uploader=fake_upload)
    await st.start()
    answer = await ask_raw(csms.chargers["CP1"], "GetLog", LOG)
    assert answer.payload is not None and answer.payload["status"] == "Accepted"
    notes = await csms.wait_action("CP1", "LogStatusNotification", count=2)
    await asyncio.sleep(0.05)
    notes = csms.chargers["CP1"].payloads("LogStatusNotification")
    assert notes == [{"status": "Uploading", "requestId": 7}] * 2
    assert st.uploads == [(f"http://x/{answer.payload['filename']}", True)]


@pytest.mark.parametrize("protocol", ["1.6", "2.0.1"])
async def test_trigger_messages(
    csms: MiniCsms, make_station: StationFactory, protocol: str
) -> None:
    st = make_station(protocol)
    await st.start()
    cp = csms.chargers["CP1"]
    n_status = len(cp.payloads("StatusNotification"))
    assert (await ask_raw(cp, "TriggerMessage", {"requestedMessage": "StatusNotification"})
            ).payload == {"status": "Accepted"}
    per = 3 if protocol == "1.6" else 2
    await csms.wait_action("CP1", "StatusNotification", count=n_status + per)
    await ask_raw(cp, "TriggerMessage", {"requestedMessage": "MeterValues"})
    await csms.wait_action("CP1", "MeterValues", count=2)
    await ask_raw(cp, "TriggerMessage", {"requestedMessage": "FirmwareStatusNotification"})
    assert (await csms.wait_action("CP1", "FirmwareStatusNotification"))[0]["status"] == "Idle"
    if protocol == "1.6":
        await ask_raw(cp, "TriggerMessage", {"requestedMessage": "DiagnosticsStatusNotification"})
        notes = await csms.wait_action("CP1", "DiagnosticsStatusNotification")
        assert notes == [{"status": "Idle"}]
        boot = await ask_raw(cp, "TriggerMessage", {"requestedMessage": "BootNotification"})
        assert boot.payload == {"status": "Accepted"}
        await csms.wait_action("CP1", "BootNotification", count=2)
        bad = await ask_raw(cp, "TriggerMessage",
                            {"requestedMessage": "Heartbeat", "connectorId": 9})
        assert bad.payload == {"status": "Rejected"}
    else:
        await ask_raw(cp, "TriggerMessage", {"requestedMessage": "LogStatusNotification"})
        assert await csms.wait_action("CP1", "LogStatusNotification") == [{"status": "Idle"}]
        boot = await ask_raw(cp, "TriggerMessage", {"requestedMessage": "BootNotification"})
        assert boot.payload == {"status": "Rejected"}  # F06.FR.17: already accepted
        cert = await ask_raw(cp, "TriggerMessage", {"requestedMessage": "SignV2GCertificate"})
        assert cert.payload == {"status": "NotImplemented"}


@pytest.mark.parametrize("protocol", ["1.6", "2.0.1"])
async def test_change_availability_whole_station(
    csms: MiniCsms, make_station: StationFactory, protocol: str
) -> None:
    st = make_station(protocol)
    await st.start()
    cp = csms.chargers["CP1"]
    before = len(cp.payloads("StatusNotification"))
    if protocol == "1.6":
        answer = await ask_raw(cp, "ChangeAvailability", {"connectorId": 0, "type": "Inoperative"})
        new = (await csms.wait_action("CP1", "StatusNotification", count=before + 3))[before:]
        assert [(s["connectorId"], s["status"]) for s in new] == [
            (0, "Unavailable"), (1, "Unavailable"), (2, "Unavailable")]
    else:
        answer = await ask_raw(cp, "ChangeAvailability", {"operationalStatus": "Inoperative"})
        new = (await csms.wait_action("CP1", "StatusNotification", count=before + 2))[before:]
        assert [(s["evseId"], s["connectorStatus"]) for s in new] == [
            (1, "Unavailable"), (2, "Unavailable")]
    assert answer.payload == {"status": "Accepted"}
    # Availability survives a reboot (1.6 §5.2, 2.0.1 G03.FR.07).
    await st.reboot()
    statuses = cp.payloads("StatusNotification")[-1]
    assert statuses.get("status", statuses.get("connectorStatus")) == "Unavailable"


@pytest.mark.parametrize("protocol", ["1.6", "2.0.1"])
async def test_change_availability_scheduled_during_session(
    csms: MiniCsms, make_station: StationFactory, protocol: str
) -> None:
    st = make_station(protocol)
    await st.start()
    await st.start_session(1, "TAG")
    cp = csms.chargers["CP1"]
    if protocol == "1.6":
        payload: dict[str, Any] = {"connectorId": 1, "type": "Inoperative"}
    else:
        payload = {"operationalStatus": "Inoperative", "evse": {"id": 1}}
    assert (await ask_raw(cp, "ChangeAvailability", payload)).payload == {"status": "Scheduled"}
    await st.stop_session(1, 100)
    last = cp.payloads("StatusNotification")[-1]
    assert last.get("status", last.get("connectorStatus")) == "Unavailable"


# ---------------------------------------------------------------------- configuration


async def test_configuration_16(csms: MiniCsms, make_station: StationFactory) -> None:
    st = make_station("1.6")
    await st.start()
    assert isinstance(st, Station16)
    cp = csms.chargers["CP1"]
    everything = await ask_raw(cp, "GetConfiguration", {})
    assert everything.payload is not None
    keys = {k["key"]: k for k in everything.payload["configurationKey"]}
    assert keys["NumberOfConnectors"] == {"key": "NumberOfConnectors", "readonly": True,
                                          "value": "2"}
    assert keys["ConnectorPhaseRotation"]["value"] == "0.RST,1.RST,2.RST"
    assert "AuthorizationKey" not in keys  # write-only
    answer = await ask_raw(cp, "GetConfiguration", {"key": ["MeterValueSampleInterval", "Nope"]})
    assert answer.payload == {
        "configurationKey": [{"key": "MeterValueSampleInterval", "readonly": False,
                              "value": "60"}],
        "unknownKey": ["Nope"],
    }
    changes = [
        ({"key": "NumberOfConnectors", "value": "4"}, "Rejected"),
        ({"key": "Nope", "value": "1"}, "NotSupported"),
        ({"key": "HeartbeatInterval", "value": "abc"}, "Rejected"),
        ({"key": "HeartbeatInterval", "value": "17"}, "Accepted"),
        ({"key": "AuthorizationKey", "value": "0123456789abcdef"}, "Accepted"),
    ]
    for payload, expected in changes:
        assert (await ask_raw(cp, "ChangeConfiguration", payload)).payload == {
            "status": expected}, payload
    assert st.heartbeat_interval == 17 and st.config.get("HeartbeatInterval") == "17"
    assert st.password == "0123456789abcdef"


async def test_variables_201(csms: MiniCsms, make_station: StationFactory) -> None:
    st = make_station("2.0.1", password="initial-password")
    await st.start()
    assert isinstance(st, Station201)
    cp = csms.chargers["CP1"]

    def item(component: str, variable: str, **extra: Any) -> dict[str, Any]:
        return {"component": {"name": component}, "variable": {"name": variable}, **extra}

    answer = await ask_raw(cp, "GetVariables", {"getVariableData": [
        item("ChargingStation", "Model"),
        item("SecurityCtrlr", "BasicAuthPassword"),
        item("Nope", "X"),
        item("OCPPCommCtrlr", "Nope"),
        item("OCPPCommCtrlr", "HeartbeatInterval", attributeType="Target"),
        {"component": {"name": "EVSE", "evse": {"id": 2}},
         "variable": {"name": "AvailabilityState"}},
        {"component": {"name": "DeviceDataCtrlr"},
         "variable": {"name": "ItemsPerMessage", "instance": "GetVariables"}},
    ]})
    assert answer.payload is not None
    results = [(r["attributeStatus"], r.get("attributeValue"))
               for r in answer.payload["getVariableResult"]]
    assert results == [
        ("Accepted", "SimModel"), ("Rejected", None), ("UnknownComponent", None),
        ("UnknownVariable", None), ("NotSupportedAttributeType", None),
        ("Accepted", "Available"), ("Accepted", "50"),
    ]
    answer = await ask_raw(cp, "SetVariables", {"setVariableData": [
        item("SecurityCtrlr", "BasicAuthPassword", attributeValue="new-password-123"),
        item("ChargingStation", "Model", attributeValue="X"),
        item("OCPPCommCtrlr", "HeartbeatInterval", attributeValue="-5"),
        item("OCPPCommCtrlr", "HeartbeatInterval", attributeValue="15"),
        item("Nope", "X", attributeValue="1"),
    ]})
    assert answer.payload is not None
    assert [r["attributeStatus"] for r in answer.payload["setVariableResult"]] == [
        "Accepted", "Rejected", "Rejected", "Accepted", "UnknownComponent"]
    assert st.password == "new-password-123" and st.heartbeat_interval == 15
    report = await ask_raw(cp, "GetBaseReport", {"requestId": 9, "reportBase": "FullInventory"})
    assert report.payload == {"status": "Accepted"}
    notify = (await csms.wait_action("CP1", "NotifyReport"))[0]
    assert notify["requestId"] == 9 and len(notify["reportData"]) > 30


async def test_notify_event_direct(csms: MiniCsms, make_station: StationFactory) -> None:
    st = make_station("2.0.1")
    await st.start()
    assert isinstance(st, Station201)
    await st.notify_event("PowerContactor", "Problem", "true", evse=1, tech_code="CX099",
                          trigger="Alerting")
    event = (await csms.wait_action("CP1", "NotifyEvent"))[0]["eventData"][0]
    assert event["component"] == {"name": "PowerContactor", "evse": {"id": 1, "connectorId": 1}}
    assert (event["trigger"], event["techCode"], event["actualValue"]) == (
        "Alerting", "CX099", "true")


# ---------------------------------------------------------------------- real uploads


async def test_http_upload_get_diagnostics(
    csms: MiniCsms, make_station: StationFactory, upload_server: UploadServer
) -> None:
    st = make_station("1.6")
    await st.start()
    location = f"http://127.0.0.1:{upload_server.port}/upload/"
    answer = await ask_raw(csms.chargers["CP1"], "GetDiagnostics", {"location": location})
    assert answer.payload is not None
    notes = await csms.wait_action("CP1", "DiagnosticsStatusNotification", count=2)
    assert [n["status"] for n in notes] == ["Uploading", "Uploaded"]
    method, path, body = upload_server.received[0]
    assert (method, path) == ("PUT", "/upload/" + answer.payload["fileName"])
    assert b"csms-sim log of CP1" in body and b"GetDiagnostics" in body
    assert st.diagnostics_status == "Idle"


@pytest.mark.parametrize("upload_server", [500], indirect=True)
async def test_http_upload_failure_get_log(
    csms: MiniCsms, make_station: StationFactory, upload_server: UploadServer
) -> None:
    st = make_station("2.0.1")
    await st.start()
    log = {**LOG, "log": {"remoteLocation": f"http://127.0.0.1:{upload_server.port}/u"}}
    await ask_raw(csms.chargers["CP1"], "GetLog", log)
    notes = await csms.wait_action("CP1", "LogStatusNotification", count=2)
    assert notes == [{"status": "Uploading", "requestId": 7},
                     {"status": "UploadFailure", "requestId": 7}]
    assert len(upload_server.received) == 1 and st.uploads[0][1] is False


@pytest.mark.parametrize("location", ["ftp://127.0.0.1:1/logs/", "sftp://127.0.0.1/x/"])
async def test_upload_failures_reported(
    csms: MiniCsms, make_station: StationFactory, location: str
) -> None:
    st = make_station("1.6")
    await st.start()
    await ask_raw(csms.chargers["CP1"], "GetDiagnostics", {"location": location})
    notes = await csms.wait_action("CP1", "DiagnosticsStatusNotification", count=2)
    assert notes[-1] == {"status": "UploadFailed"}


async def test_get_log_cancels_previous(csms: MiniCsms, make_station: StationFactory) -> None:
    gate = asyncio.Event()

    async def slow(target: str, data: bytes) -> bool:
        await gate.wait()
        return True

    st: StationBase = make_station("2.0.1", uploader=slow)
    await st.start()
    cp = csms.chargers["CP1"]
    first = await ask_raw(cp, "GetLog", LOG)
    await csms.wait_action("CP1", "LogStatusNotification")
    second = await ask_raw(cp, "GetLog", {**LOG, "requestId": 8})
    assert first.payload is not None and first.payload["status"] == "Accepted"
    assert second.payload is not None and second.payload["status"] == "AcceptedCanceled"
    await csms.wait_action("CP1", "LogStatusNotification", count=2)
    gate.set()
    notes = await csms.wait_action("CP1", "LogStatusNotification", count=3)
    assert notes[-1] == {"status": "Uploaded", "requestId": 8}
