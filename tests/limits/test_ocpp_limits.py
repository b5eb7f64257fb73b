"""Limits of the OCPP endpoint over real websockets: the message rate per connection (CALLERROR,
then close 1008 after sustained abuse), the message size (close 1009) and the handshake rate per
address (HTTP 429); each refusal logged and counted, and the other chargers served throughout."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus

from csms.app import CentralSystem
from csms.protocol.connection import ABUSE_CLOSE_REASON
from diagnostics.commands import TriggerKind, TriggerMessage
from tests.conftest import MakeCentral
from tests.e2e.rawclient import BOOT_16, BOOT_201, call, open_raw, recv_json
from tests.limits.conftest import NEVER, JsonLogs, limited, refusals
from tests.metrics.helpers import scrape

VERSIONS = {"1.6": ("ocpp1.6", BOOT_16), "2.0.1": ("ocpp2.0.1", BOOT_201)}


async def _connect(central: CentralSystem, version: str, station_id: str) -> ClientConnection:
    protocol, boot = VERSIONS[version]
    ws = await open_raw(central.ocpp_url, station_id, [protocol])
    answer = await call(ws, "BootNotification", boot, unique_id="boot")
    assert answer[:2] == [3, "boot"]
    return ws


async def _served(ws: ClientConnection, unique_id: str = "alive") -> None:
    """The connection is open and its next CALL is answered."""
    answer = await call(ws, "Heartbeat", {}, unique_id=unique_id)
    assert answer[:2] == [3, unique_id], answer


async def _until_closed(ws: ClientConnection, limit: int = 200) -> list[Any]:
    """The frames received until the server closes the connection."""
    frames: list[Any] = []
    with pytest.raises(ConnectionClosed):
        for _ in range(limit):
            frames.append(await recv_json(ws))
    return frames


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_calls_over_the_rate_get_a_call_error_and_the_connection_stays(
    make_central: MakeCentral, json_logs: JsonLogs, version: str
) -> None:
    central = await limited(make_central, ocpp_messages_per_second=NEVER, ocpp_message_burst=3,
                            ocpp_refusals_before_close=0)
    bystander = await _connect(central, version, f"RATE-OK-{version}")
    ws = await _connect(central, version, f"RATE-{version}")  # the boot took 1 of 3
    try:
        for n in range(4):
            await ws.send(json.dumps([2, f"h{n}", "Heartbeat", {}]))
        answers = [await recv_json(ws) for _ in range(4)]
        assert [a[:2] for a in answers[:2]] == [[3, "h0"], [3, "h1"]]
        for n, answer in zip((2, 3), answers[2:], strict=True):
            assert answer[:3] == [4, f"h{n}", "GenericError"], answer
            assert answer[3] == "Too many messages"
            assert "rate limit" in answer[4]["cause"]
        # Still refused, still open (never closed with ocpp_refusals_before_close 0).
        again = await call(ws, "Heartbeat", {}, unique_id="h4")
        assert again[:3] == [4, "h4", "GenericError"]
        await _served(bystander)  # its own bucket: untouched by the other connection
    finally:
        await ws.close()
        await bystander.close()
    assert await refusals(central, "ocpp_message_rate") == 3
    assert await refusals(central, "ocpp_abuse_close") == 0
    [logged] = json_logs.lines("ocpp_rate_limited")  # the 1st, 10th, 100th... refusal
    assert logged["charger_id"] == f"RATE-{version}" and logged["refused"] == 1
    assert logged["message_id"] == "h2" and logged["level"] == "warning"


async def test_answers_to_the_servers_calls_are_never_refused(make_central: MakeCentral) -> None:
    central = await limited(make_central, ocpp_messages_per_second=NEVER, ocpp_message_burst=1,
                            ocpp_refusals_before_close=0)
    ws = await _connect(central, "1.6", "RATE-ANSWER")  # the boot took the only token
    try:
        assert (await call(ws, "Heartbeat", {}, unique_id="over"))[:2] == [4, "over"]
        command = asyncio.create_task(
            central.execute("RATE-ANSWER", TriggerMessage(TriggerKind.HEARTBEAT))
        )
        request = await recv_json(ws)
        assert request[0] == 2 and request[2] == "TriggerMessage"
        await ws.send(json.dumps([3, request[1], {"status": "Accepted"}]))
        outcome = await asyncio.wait_for(command, 10)
        assert outcome.ok, outcome
    finally:
        await ws.close()
    assert await refusals(central, "ocpp_message_rate") == 1


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_sustained_flood_is_closed_with_1008_and_others_are_served(
    make_central: MakeCentral, json_logs: JsonLogs, version: str
) -> None:
    central = await limited(make_central, ocpp_messages_per_second=NEVER, ocpp_message_burst=2,
                            ocpp_refusals_before_close=5, ocpp_refusal_window=1e6)
    bystander = await _connect(central, version, f"FLOOD-OK-{version}")
    ws = await _connect(central, version, f"FLOOD-{version}")
    try:
        for n in range(40):
            await ws.send(json.dumps([2, f"f{n}", "Heartbeat", {}]))
        frames = await _until_closed(ws)
        await _served(bystander)
    finally:
        await bystander.close()
    # f0 took the last token; the 6th refusal (f6) ends the connection, later frames dropped.
    assert frames[0][:2] == [3, "f0"]
    assert [f[:3] for f in frames[1:]] == [[4, f"f{n}", "GenericError"] for n in range(1, 7)]
    assert ws.close_code == 1008 and ws.close_reason == ABUSE_CLOSE_REASON
    assert await refusals(central, "ocpp_message_rate") == 6
    assert await refusals(central, "ocpp_abuse_close") == 1
    [closed] = json_logs.lines("ocpp_abuse_closed")
    assert closed["charger_id"] == f"FLOOD-{version}" and closed["refused"] == 6
    disconnected = [line for line in json_logs.lines("station_disconnected")
                    if line["charger_id"] == f"FLOOD-{version}"]
    assert disconnected and disconnected[0]["reason"] == f"1008 {ABUSE_CLOSE_REASON}"
    # The charger may come back (a new connection has a new bucket) and is served again.
    back = await _connect(central, version, f"FLOOD-{version}")
    await back.close()


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_oversized_frame_closes_with_1009_and_is_counted(
    make_central: MakeCentral, json_logs: JsonLogs, version: str
) -> None:
    central = await make_central(max_message_size=2048)
    assert central.settings.ocpp.max_message_size == 2048
    bystander = await _connect(central, version, f"BIG-OK-{version}")
    ws = await _connect(central, version, f"BIG-{version}")
    try:
        # Just under the limit: handled like any frame (an answer with its id).
        fits = json.dumps([2, "fits", "DataTransfer", {"vendorId": "V", "data": "x" * 1900}])
        assert len(fits) <= 2048
        await ws.send(fits)
        assert (await recv_json(ws))[1] == "fits"
        await ws.send(json.dumps([2, "big", "DataTransfer", {"vendorId": "V", "data": "x" * 4096}]))
        assert await _until_closed(ws) == []
        await _served(bystander)
    finally:
        await bystander.close()
    assert ws.close_code == 1009
    assert await refusals(central, "ocpp_message_size") == 1
    [logged] = json_logs.lines("ocpp_message_too_big")
    assert logged["charger_id"] == f"BIG-{version}"


async def test_default_message_size_is_one_mebibyte(make_central: MakeCentral) -> None:
    central = await make_central()
    assert central.settings.ocpp.max_message_size == 1 << 20
    ws = await _connect(central, "1.6", "BIG-DEFAULT")
    big = {"vendorId": "V", "data": "x" * (1 << 20)}
    await ws.send(json.dumps([2, "big", "DataTransfer", big]))
    assert await _until_closed(ws) == []
    assert ws.close_code == 1009
    assert await refusals(central, "ocpp_message_size") == 1


async def test_handshakes_over_the_rate_get_429(
    make_central: MakeCentral, json_logs: JsonLogs
) -> None:
    central = await limited(make_central, handshakes_per_minute=2)
    first = await _connect(central, "1.6", "HS-1")
    second = await open_raw(central.ocpp_url, "HS-2")
    await second.close()
    try:
        with pytest.raises(InvalidStatus) as refused:
            await open_raw(central.ocpp_url, "HS-3")
        response = refused.value.response
        assert response.status_code == 429
        assert int(response.headers["Retry-After"]) >= 1
        assert b"Too many connection attempts" in response.body
        await _served(first)  # connected chargers are not affected
    finally:
        await first.close()
    assert await refusals(central, "ocpp_handshake_rate") == 1
    scraped = await scrape(central)
    assert scraped.value("csms_ocpp_connections_refused_total", reason="rate_limited") == 1
    [logged] = json_logs.lines("handshake_refused")
    assert logged["reason"] == "handshake rate limit" and logged["retry_after"] >= 1
    assert logged["remote"].startswith("127.0.0.1:")
    # Refused before anything is read: the refused station was not registered.
    assert await central.store.get_station("HS-3") is None


async def test_exempt_networks_have_no_handshake_limit(make_central: MakeCentral) -> None:
    central = await limited(make_central, handshakes_per_minute=1,
                            exempt_networks=("127.0.0.0/8",))
    for n in range(4):
        ws = await _connect(central, "2.0.1", f"HS-EXEMPT-{n}")
        await ws.close()
    assert await refusals(central, "ocpp_handshake_rate") == 0


async def test_limits_off_with_zero(make_central: MakeCentral) -> None:
    central = await limited(make_central, handshakes_per_minute=0, ocpp_messages_per_second=0,
                            ocpp_message_burst=1)
    ws = await _connect(central, "1.6", "NO-LIMITS")
    try:
        for n in range(20):
            await ws.send(json.dumps([2, f"n{n}", "Heartbeat", {}]))
        answers = [await recv_json(ws) for _ in range(20)]
        assert all(a[0] == 3 for a in answers)
    finally:
        await ws.close()
    assert await refusals(central, "ocpp_message_rate") == 0
