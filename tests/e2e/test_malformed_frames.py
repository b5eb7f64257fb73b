"""Bad input gets a CALLERROR where an id can be read, and the connection stays
(OCPP-J 1.6 §4.2.3, 2.0.1 Part 4 §4.2.3 and §4.3)."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import ClientConnection

from csms.app import CentralSystem
from tests.e2e.rawclient import BOOT_16, BOOT_201, call, open_raw, recv_json

VERSIONS = {"1.6": ("ocpp1.6", BOOT_16), "2.0.1": ("ocpp2.0.1", BOOT_201)}


async def _still_serving(ws: ClientConnection) -> None:
    answer = await call(ws, "Heartbeat", {}, unique_id="alive")
    assert answer[0] == 3 and answer[1] == "alive"


async def _connect(central: CentralSystem, version: str, station_id: str) -> ClientConnection:
    protocol, boot = VERSIONS[version]
    ws = await open_raw(central.ocpp_url, station_id, [protocol])
    assert (await call(ws, "BootNotification", boot, unique_id="boot"))[0] == 3
    return ws


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
@pytest.mark.parametrize(
    ("frame", "message_id", "code"),
    [
        ('[2,"bad-json","Heartbeat",{', "bad-json", "FormatViolation"),
        ('[2,"short","Heartbeat"]', "short", "FormatViolation"),
        ('[2,"nodict","Heartbeat",[]]', "nodict", "FormatViolation"),
        ('[2,"unknown-action","FlyToTheMoon",{}]', "unknown-action", "NotSupported"),
        ('[2,"extra-key","Heartbeat",{"x":1}]', "extra-key", "FormatViolation"),
        ('[7,"type7",{}]', "type7", None),
    ],
)
async def test_malformed_frame_gets_call_error_and_connection_stays(
    central: CentralSystem, version: str, frame: str, message_id: str, code: str | None
) -> None:
    ws = await _connect(central, version, f"MAL-{version}")
    try:
        await ws.send(frame)
        answer = await recv_json(ws)
        expected = code or ("MessageTypeNotSupported" if version == "2.0.1" else "ProtocolError")
        assert answer[:3] == [4, message_id, expected]
        assert isinstance(answer[3], str) and isinstance(answer[4], dict)
        await _still_serving(ws)
    finally:
        await ws.close()


async def test_unreadable_id_gets_minus_one_in_201(central: CentralSystem) -> None:
    ws = await _connect(central, "2.0.1", "MAL-ID-201")
    try:
        for frame in ["not json at all", '{"a": 1}', "[]", "[2]", '[2, 17, "Heartbeat", {}]']:
            await ws.send(frame)
            answer = await recv_json(ws)
            assert answer[0] == 4 and answer[1] == "-1", frame
            assert answer[2] in {"FormatViolation", "ProtocolError"}
        await _still_serving(ws)
    finally:
        await ws.close()


async def test_unreadable_id_is_logged_not_answered_in_16(central: CentralSystem) -> None:
    ws = await _connect(central, "1.6", "MAL-ID-16")
    try:
        await ws.send("not json at all")
        await ws.send(b'\xff\xfe binary garbage')
        await _still_serving(ws)  # the next answer is the heartbeat's: nothing came before it
    finally:
        await ws.close()


@pytest.mark.parametrize(
    ("version", "action", "payload", "code"),
    [
        ("1.6", "BootNotification", {"chargePointVendor": "V"}, "ProtocolError"),
        ("1.6", "BootNotification", {"chargePointVendor": 5, "chargePointModel": "M"},
         "TypeConstraintViolation"),
        ("1.6", "Heartbeat", {"extra": True}, "FormatViolation"),
        ("1.6", "Reset", {"type": "Soft"}, "NotImplemented"),
        ("2.0.1", "BootNotification", {"reason": "PowerUp"}, "ProtocolError"),
        ("2.0.1", "Heartbeat", {"extra": True}, "FormatViolation"),
        ("2.0.1", "GetVariables", {"getVariableData": []}, "NotImplemented"),
    ],
)
async def test_schema_violations_get_the_librarys_verdict(
    central: CentralSystem, version: str, action: str, payload: dict[str, object], code: str
) -> None:
    ws = await _connect(central, version, f"SCHEMA-{version}")
    try:
        answer = await call(ws, action, payload, unique_id="v1")
        assert answer[:3] == [4, "v1", code]
        await _still_serving(ws)
    finally:
        await ws.close()


async def test_non_conformant_error_code_is_recorded_not_dropped(central: CentralSystem) -> None:
    ws = await _connect(central, "1.6", "VENDOR-16")
    try:
        answer = await call(ws, "StatusNotification", {
            "connectorId": 1, "errorCode": "Error", "status": "Faulted",
            "vendorId": "ACME", "vendorErrorCode": "CX002", "info": "x" * 80,
        }, unique_id="st")
        assert answer == [3, "st", {}]
    finally:
        await ws.close()
    connectors = await central.store.connectors("VENDOR-16")
    (connector,) = [c for c in connectors if c.connector_id == 1]
    assert connector.error_code == "Error"
    assert connector.vendor_error_code == "CX002"
    assert connector.status == "Faulted"
    faults = await central.store.events("VENDOR-16", kind="Fault")
    assert len(faults) == 1 and faults[0].code == "Error" and faults[0].vendor_code == "CX002"


async def test_unknown_status_string_is_kept_raw(central: CentralSystem) -> None:
    ws = await _connect(central, "2.0.1", "VENDOR-201")
    try:
        answer = await call(ws, "StatusNotification", {
            "timestamp": "2026-11-21T10:00:00Z", "connectorStatus": "Broken",
            "evseId": 1, "connectorId": 1,
        }, unique_id="st")
        assert answer == [3, "st", {}]
    finally:
        await ws.close()
    (connector,) = await central.store.connectors("VENDOR-201")
    assert connector.status == "Unknown" and connector.raw_status == "Broken"


async def test_unexpected_call_result_is_ignored(central: CentralSystem) -> None:
    ws = await _connect(central, "2.0.1", "STRAY")
    try:
        await ws.send('[3,"nobody-asked",{}]')
        await ws.send('[4,"nobody-asked","GenericError","",{}]')
        await _still_serving(ws)
    finally:
        await ws.close()


async def test_oversized_frame_closes_with_1009(make_central) -> None:  # type: ignore[no-untyped-def]
    central = await make_central(max_message_size=4096)
    ws = await _connect(central, "1.6", "BIG")
    await ws.send(json.dumps([2, "big", "DataTransfer", {"vendorId": "X", "data": "y" * 8000}]))
    await asyncio.wait_for(ws.wait_closed(), 5)
    assert ws.close_code == 1009
