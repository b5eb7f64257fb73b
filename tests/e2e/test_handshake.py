"""The websocket handshake: identity, subprotocols, unknown-charger policy, Basic auth,
and one session per identity (OCPP-J 1.6 §3, 2.0.1 Part 4 §3, security profile 1)."""

from __future__ import annotations

import asyncio

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from csms.app import CentralSystem
from csms.security.passwords import hash_password
from tests.e2e.helpers import until
from tests.e2e.rawclient import BOOT_16, BOOT_201, basic_auth, call, open_raw


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        (["ocpp2.0.1", "ocpp1.6"], "ocpp2.0.1"),
        (["ocpp1.6", "ocpp2.0.1"], "ocpp1.6"),
        (["ocpp1.5", "ocpp1.6"], "ocpp1.6"),
        (["ocpp2.1", "ocpp2.0.1"], "ocpp2.0.1"),
    ],
)
async def test_subprotocol_follows_client_preference(
    central: CentralSystem, offered: list[str], chosen: str
) -> None:
    ws = await open_raw(central.ocpp_url, "CP-NEG", offered)
    try:
        assert ws.subprotocol == chosen
        boot = BOOT_16 if chosen == "ocpp1.6" else BOOT_201
        answer = await call(ws, "BootNotification", boot)
        assert answer[0] == 3 and answer[2]["status"] == "Accepted"
    finally:
        await ws.close()
    station = await central.store.get_station("CP-NEG")
    assert station is not None and station.protocol == chosen.removeprefix("ocpp")


@pytest.mark.parametrize("offered", [["ocpp1.2", "ocpp1.5"], None])
async def test_no_common_subprotocol_completes_handshake_then_closes(
    central: CentralSystem, offered: list[str] | None
) -> None:
    ws = await open_raw(central.ocpp_url, "CP-NOPROTO", offered)
    assert ws.subprotocol is None  # handshake completed, no Sec-WebSocket-Protocol
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1002
    assert "no common OCPP subprotocol" in closed.value.rcvd.reason
    log = await central.store.connection_log("CP-NOPROTO")
    assert [entry.kind for entry in log] == ["refused"]


@pytest.mark.parametrize(
    "path_id", ["", "a" * 49, "CP%3A1", "a/b"],
)
async def test_bad_identity_is_refused_with_404(central: CentralSystem, path_id: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        await open_raw(central.ocpp_url, path_id)
    assert refused.value.response.status_code == 404


async def test_wrong_prefix_is_404(central: CentralSystem) -> None:
    with pytest.raises(InvalidStatus) as refused:
        await open_raw(central.ocpp_url.replace("/ocpp", "/other"), "CP1")
    assert refused.value.response.status_code == 404


async def test_identity_is_percent_decoded(central: CentralSystem) -> None:
    ws = await open_raw(central.ocpp_url, "RDAM%20123")
    try:
        assert (await call(ws, "BootNotification", BOOT_16))[0] == 3
    finally:
        await ws.close()
    station = await central.store.get_station("RDAM 123")
    assert station is not None and station.vendor == "RawVendor"


async def test_unknown_station_accepted_and_registered(central: CentralSystem) -> None:
    assert await central.store.get_station("NEW-1") is None
    ws = await open_raw(central.ocpp_url, "NEW-1")
    try:
        assert (await call(ws, "Heartbeat", {}))[0] == 3
        station = await central.store.get_station("NEW-1")
        assert station is not None and station.connected
    finally:
        await ws.close()


async def test_unknown_station_rejected_with_404_when_configured(make_central) -> None:  # type: ignore[no-untyped-def]
    central = await make_central(unknown_stations="reject")
    with pytest.raises(InvalidStatus) as refused:
        await open_raw(central.ocpp_url, "STRANGER")
    assert refused.value.response.status_code == 404
    assert await central.store.get_station("STRANGER") is None
    assert [e.kind for e in await central.store.connection_log("STRANGER")] == ["refused"]
    # A registered station is still welcome.
    await central.store.ensure_station("KNOWN")
    ws = await open_raw(central.ocpp_url, "KNOWN")
    try:
        assert (await call(ws, "Heartbeat", {}))[0] == 3
    finally:
        await ws.close()


async def test_basic_auth_accepts_the_right_password(central: CentralSystem) -> None:
    await central.store.set_password_hash("SECURE-1", hash_password("correct horse 1234"))
    ws = await open_raw(central.ocpp_url, "SECURE-1",
                        headers=basic_auth("SECURE-1", "correct horse 1234"))
    try:
        assert (await call(ws, "Heartbeat", {}))[0] == 3
    finally:
        await ws.close()


@pytest.mark.parametrize(
    "headers",
    [
        None,
        basic_auth("SECURE-2", "wrong password!!"),
        basic_auth("OTHER-ID", "correct horse 1234"),
        {"Authorization": "Basic !!!not-base64"},
        {"Authorization": "Bearer abc"},
    ],
)
async def test_basic_auth_refuses_with_401(
    central: CentralSystem, headers: dict[str, str] | None
) -> None:
    await central.store.set_password_hash("SECURE-2", hash_password("correct horse 1234"))
    with pytest.raises(InvalidStatus) as refused:
        await open_raw(central.ocpp_url, "SECURE-2", headers=headers)
    assert refused.value.response.status_code == 401
    assert "Basic" in refused.value.response.headers["WWW-Authenticate"]
    assert [e.kind for e in await central.store.connection_log("SECURE-2")] == ["refused"]


async def test_reconnect_replaces_the_old_session(central: CentralSystem) -> None:
    first = await open_raw(central.ocpp_url, "CP-RE", ["ocpp2.0.1"])
    assert (await call(first, "BootNotification", BOOT_201))[0] == 3
    second = await open_raw(central.ocpp_url, "CP-RE", ["ocpp2.0.1"])
    try:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(first.recv(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000
        assert "replaced" in closed.value.rcvd.reason
        answer = await call(second, "Heartbeat", {}, unique_id="after-replace")
        assert answer[:2] == [3, "after-replace"]
        assert central.registry.ids().count("CP-RE") == 1
        station = await central.store.get_station("CP-RE")
        assert station is not None and station.connected
        kinds = [e.kind for e in await central.store.connection_log("CP-RE")]
        assert kinds == ["connected", "disconnected", "connected"]
    finally:
        await second.close()
    await until(lambda: "CP-RE" not in central.registry)
    station = await central.store.get_station("CP-RE")
    assert station is not None and not station.connected



async def test_server_answers_heartbeat_interval_from_settings(central: CentralSystem) -> None:
    ws = await open_raw(central.ocpp_url, "CP-HB")
    try:
        answer = await call(ws, "BootNotification", BOOT_16)
        assert answer[2]["interval"] == central.settings.ocpp.heartbeat_interval
        assert answer[2]["currentTime"].endswith("Z")
    finally:
        await ws.close()
