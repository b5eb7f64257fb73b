"""Connection, boot, status, heartbeat, reset and offline behaviour of both simulators."""

from __future__ import annotations

import asyncio
import base64

import pytest

from simulators import BootTimeout, Station16, Station201
from tests.simulators.conftest import MiniCsms, StationFactory, ask_raw

PROTOCOLS = ["1.6", "2.0.1"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_boot_statuses_and_heartbeat(
    csms: MiniCsms, make_station: StationFactory, protocol: str
) -> None:
    st = make_station(protocol, heartbeat_interval=0.1)
    await st.start()
    assert st.booted.is_set() and st.connected and st.boot_count == 1
    assert st.subprotocol == ("ocpp1.6" if protocol == "1.6" else "ocpp2.0.1")
    await csms.wait_action("CP1", "Heartbeat", count=2, timeout=2)
    cp = csms.chargers["CP1"]
    actions = cp.actions()
    assert actions[0] == "BootNotification"
    statuses = cp.payloads("StatusNotification")
    if protocol == "1.6":
        assert actions[1:4] == ["StatusNotification"] * 3
        assert [s["connectorId"] for s in statuses] == [0, 1, 2]
        assert {s["status"] for s in statuses} == {"Available"}
        assert cp.payloads("BootNotification")[0]["chargePointVendor"] == "SimVendor"
    else:
        assert actions[1:3] == ["StatusNotification"] * 2
        assert [(s["evseId"], s["connectorId"]) for s in statuses] == [(1, 1), (2, 1)]
        assert {s["connectorStatus"] for s in statuses} == {"Available"}
        assert cp.payloads("BootNotification")[0]["reason"] == "PowerUp"
    assert [s.action for s in st.sent][:1] == ["BootNotification"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_uses_csms_interval_and_retries_pending(
    csms: MiniCsms, make_station: StationFactory, protocol: str
) -> None:
    csms.boot_statuses = ["Pending", "Rejected"]
    csms.interval = 0  # station falls back to boot_retry_interval
    st = make_station(protocol)
    st.boot_retry_interval = 0.05
    await st.start(timeout=3)
    boots = csms.chargers["CP1"].payloads("BootNotification")
    assert len(boots) == 3 and st.boot_status == "Accepted" and st.boot_count == 1
    # No other message was sent before the boot was accepted (1.6 §4.2.1, 2.0.1 B02).
    assert csms.chargers["CP1"].actions()[:3] == ["BootNotification"] * 3
    assert st.heartbeat_interval == 300  # interval 0 keeps the default


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_heartbeat_interval_from_boot(
    csms: MiniCsms, make_station: StationFactory, protocol: str
) -> None:
    csms.interval = 42
    st = make_station(protocol)
    await st.start()
    assert st.heartbeat_interval == 42
    if isinstance(st, Station16):
        assert st.config.get("HeartbeatInterval") == "42"
    else:
        assert isinstance(st, Station201)
        assert st.variables.get("OCPPCommCtrlr", "HeartbeatInterval") == "42"


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_reset_reconnects_and_reboots(
    csms: MiniCsms, make_station: StationFactory, protocol: str
) -> None:
    st = make_station(protocol)
    await st.start()
    cp = csms.chargers["CP1"]
    if protocol == "1.6":
        await st.start_session(1, "TAG")
        answer = await ask_raw(cp, "Reset", {"type": "Hard"})
    else:
        answer = await ask_raw(cp, "Reset", {"type": "Immediate"})
    assert answer.payload == {"status": "Accepted"}
    boots = await csms.wait_action("CP1", "BootNotification", count=2)
    await asyncio.wait_for(st.booted.wait(), 3)
    assert st.boot_count == 2 and st.connection_count == 2 and st.reset_count == 1
    if protocol == "1.6":
        stops = csms.chargers["CP1"].payloads("StopTransaction")
        assert stops[0]["reason"] == "HardReset" and not st.sessions
    else:
        assert boots[1]["reason"] == "RemoteReset"
    assert st.received[-1].action == "Reset"


async def test_scheduled_reset_after_session_201(
    csms: MiniCsms, make_station: StationFactory
) -> None:
    st = make_station("2.0.1")
    await st.start()
    await st.start_session(1, "TAG")
    answer = await ask_raw(csms.chargers["CP1"], "Reset", {"type": "OnIdle"})
    assert answer.payload == {"status": "Scheduled"}
    await st.stop_session(1, 500)
    boots = await csms.wait_action("CP1", "BootNotification", count=2)
    assert boots[1]["reason"] == "ScheduledReset"


async def test_boot_reason_quirk(csms: MiniCsms, make_station: StationFactory) -> None:
    st = make_station("2.0.1")
    st.behaviour.boot_reason_after_reset = "PowerUp"
    await st.start()
    await ask_raw(csms.chargers["CP1"], "Reset", {"type": "Immediate"})
    boots = await csms.wait_action("CP1", "BootNotification", count=2)
    assert boots[1]["reason"] == "PowerUp"


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_offline_and_back_without_reboot(
    csms: MiniCsms, make_station: StationFactory, protocol: str
) -> None:
    st = make_station(protocol)
    await st.start()
    await st.go_offline()
    assert not st.connected and not st.booted.is_set()
    await asyncio.sleep(0.15)  # longer than reconnect_delay: must stay offline
    assert len(csms.connections) == 1
    await st.come_online()
    assert st.connected and st.connection_count == 2 and st.boot_count == 1
    assert len(csms.chargers["CP1"].payloads("BootNotification")) == 1
    per_boot = 3 if protocol == "1.6" else 2
    await csms.wait_action("CP1", "StatusNotification", count=2 * per_boot)


async def test_local_reboot(csms: MiniCsms, make_station: StationFactory) -> None:
    st = make_station("2.0.1")
    await st.start()
    await st.reboot(reason="Watchdog")
    assert st.boot_count == 2
    assert csms.chargers["CP1"].payloads("BootNotification")[1]["reason"] == "Watchdog"


async def test_url_encoding_and_basic_auth(csms: MiniCsms, make_station: StationFactory) -> None:
    csms.passwords = {"RDAM 123": "s3cret-pass"}
    st = make_station("1.6", "RDAM 123", password="s3cret-pass")
    assert st.endpoint.endswith("/ocpp/RDAM%20123")
    await st.start()
    conn = csms.connections[0]
    assert conn.station_id == "RDAM 123"
    assert conn.authorization == "Basic " + base64.b64encode(b"RDAM 123:s3cret-pass").decode()


async def test_bad_password_and_unknown_station(
    csms: MiniCsms, make_station: StationFactory
) -> None:
    csms.passwords = {"CP1": "right"}
    wrong = make_station("1.6", "CP1", password="wrong")
    with pytest.raises(BootTimeout, match="http_status=401"):
        await wrong.start(timeout=0.3)
    assert wrong.last_http_status == 401 and not wrong.connected
    unknown = make_station("2.0.1", "NOPE", password="x")
    with pytest.raises(BootTimeout):
        await unknown.start(timeout=0.3)
    assert unknown.last_http_status == 404


@pytest.mark.parametrize("offer", [[], ["ocpp9.9"]])
async def test_no_common_subprotocol(
    csms: MiniCsms, make_station: StationFactory, offer: list[str]
) -> None:
    st = make_station("1.6", subprotocols=offer)
    with pytest.raises(BootTimeout):
        await st.start(timeout=0.3)
    assert csms.connections[0].subprotocol is None
    assert (1002, "no subprotocol") in st.closes and st.boot_count == 0


async def test_gives_up_after_max_connect_attempts(make_station: StationFactory) -> None:
    st = make_station("1.6", url="ws://127.0.0.1:1/ocpp", max_connect_attempts=2,
                      reconnect_delay=0.01)
    with pytest.raises(BootTimeout):
        await st.start(timeout=2)
    assert st.gave_up and st.connect_failures == 2


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_fault_rereported_after_boot_until_cleared(
    csms: MiniCsms, make_station: StationFactory, protocol: str
) -> None:
    st = make_station(protocol)
    await st.start()
    await st.inject_fault(1, "GroundFailure", "CX002", "rcd tripped")
    await st.reboot()
    cp = csms.chargers["CP1"]
    if protocol == "1.6":
        faulted = [p for p in cp.payloads("StatusNotification") if p["status"] == "Faulted"]
        assert len(faulted) == 2
        assert faulted[1]["errorCode"] == "GroundFailure"
        assert faulted[1]["vendorErrorCode"] == "CX002"
    else:
        events = [p["eventData"][0] for p in cp.payloads("NotifyEvent")]
        assert len(events) == 2
        assert events[1]["component"]["name"] == "RCD"
        assert events[1]["variable"]["name"] == "Tripped"
        assert events[1]["techCode"] == "CX002" and events[1]["cleared"] is False
    await st.clear_fault(1)
    assert 1 not in st.faults
    if protocol == "1.6":
        last = cp.payloads("StatusNotification")[-1]
        assert (last["status"], last["errorCode"]) == ("Available", "NoError")
    else:
        assert cp.payloads("StatusNotification")[-1]["connectorStatus"] == "Available"
        assert cp.payloads("NotifyEvent")[-1]["eventData"][0]["cleared"] is True


async def test_nonconformant_status_and_raw(csms: MiniCsms, make_station: StationFactory) -> None:
    st = make_station("1.6")
    await st.start()
    await st.set_status(1, "Faulted", "Error", "E-42", "vendor text", validate=False)
    assert csms.chargers["CP1"].payloads("StatusNotification")[-1]["errorCode"] == "Error"
    answer = await st.send_raw('[2,"raw-1","Heartbeat",{}]', await_response=True)
    assert answer is not None and answer[0] == 3 and "currentTime" in answer[2]
    assert (await st.heartbeat())["currentTime"]


async def test_wait_for_command_returns_in_order(
    csms: MiniCsms, make_station: StationFactory
) -> None:
    st = make_station("1.6")
    await st.start()
    cp = csms.chargers["CP1"]
    await ask_raw(cp, "ClearCache", {})
    await ask_raw(cp, "ClearCache", {})
    first = await st.wait_for_command("ClearCache")
    second = await st.wait_for_command("ClearCache")
    assert first.unique_id != second.unique_id
    assert first.response == {"status": "Accepted"}
    with pytest.raises(TimeoutError):
        await st.wait_for_command("ClearCache", timeout=0.05)
    sent = await st.wait_for_sent("BootNotification")
    assert sent.response is not None and sent.response["status"] == "Accepted"


async def test_context_manager(csms: MiniCsms) -> None:
    async with Station201("CTX", csms.url, reconnect_delay=0.05) as st:
        assert st.booted.is_set()
    assert not st.connected


async def test_restart_after_stop_while_offline(
    csms: MiniCsms, make_station: StationFactory
) -> None:
    st = make_station("2.0.1")
    await st.start()
    await st.go_offline()
    await st.stop()
    await st.start()
    assert st.boot_count == 2 and st.connection_count == 2


async def test_reconnects_when_csms_drops_connection(
    csms: MiniCsms, make_station: StationFactory
) -> None:
    st = make_station("1.6")
    await st.start()
    await csms.chargers["CP1"]._connection.close()
    await csms.wait(lambda: len(csms.connections) == 2)
    await asyncio.wait_for(st.booted.wait(), 3)
    assert st.connection_count == 2 and st.boot_count == 1
    assert st.close_code == 1000


async def test_wait_for_command_predicate(csms: MiniCsms, make_station: StationFactory) -> None:
    st = make_station("1.6")
    await st.start()
    cp = csms.chargers["CP1"]
    await ask_raw(cp, "TriggerMessage", {"requestedMessage": "Heartbeat"})
    await ask_raw(cp, "TriggerMessage", {"requestedMessage": "StatusNotification"})
    second = await st.wait_for_command(
        "TriggerMessage", predicate=lambda c: c.payload["requestedMessage"] != "Heartbeat")
    first = await st.wait_for_command("TriggerMessage")
    assert first.payload["requestedMessage"] == "Heartbeat" and second.seq > first.seq


async def test_call_escape_hatch(csms: MiniCsms, make_station: StationFactory) -> None:
    from ocpp.v16 import call as c16

    from simulators import CallErrorResponse

    st = make_station("1.6")
    await st.start()
    answer = await st.call(c16.DataTransfer(vendor_id="com.sim", message_id="x"))
    assert st.sent[-1].action == "DataTransfer" and st.sent[-1].payload == {
        "vendorId": "com.sim", "messageId": "x"}
    assert answer == st.sent[-1].response
    with pytest.raises(CallErrorResponse) as info:
        await st.call_action("SignCertificate", {"csr": "x"})
    assert info.value.code in ("NotImplemented", "NotSupported")
    assert st.sent[-1].error_code == info.value.code
