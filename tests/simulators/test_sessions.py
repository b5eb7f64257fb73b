"""Charging sessions: local and remote start/stop, meter values, refused id tokens."""

from __future__ import annotations

import pytest

from simulators import SessionRejected
from tests.simulators.conftest import MiniCsms, StationFactory, ask_raw


async def test_session_16(csms: MiniCsms, make_station: StationFactory) -> None:
    st = make_station("1.6")
    await st.start()
    session = await st.start_session(1, "TAG-1", meter_start_wh=1000)
    assert session.transaction_id == 1 and st.sessions[1] is session
    await st.send_meter_values(1, 2500, power_w=7400)
    await st.stop_session(1, 4000)
    cp = csms.chargers["CP1"]
    flow = [a for a in cp.actions() if a != "Heartbeat"][4:]
    assert flow == ["StatusNotification", "Authorize", "StartTransaction", "StatusNotification",
                    "MeterValues", "StatusNotification", "StopTransaction", "StatusNotification"]
    statuses = [p["status"] for p in cp.payloads("StatusNotification")[3:]]
    assert statuses == ["Preparing", "Charging", "Finishing", "Available"]
    start = cp.payloads("StartTransaction")[0]
    assert (start["connectorId"], start["idTag"], start["meterStart"]) == (1, "TAG-1", 1000)
    meter = cp.payloads("MeterValues")[0]
    assert meter["transactionId"] == 1 and meter["connectorId"] == 1
    sampled = meter["meterValue"][0]["sampledValue"]
    assert [(s["measurand"], s["value"], s["unit"]) for s in sampled] == [
        ("Energy.Active.Import.Register", "2500", "Wh"), ("Power.Active.Import", "7400", "W")]
    stop = cp.payloads("StopTransaction")[0]
    assert (stop["transactionId"], stop["meterStop"], stop["reason"]) == (1, 4000, "Local")
    assert not st.sessions


async def test_session_201(csms: MiniCsms, make_station: StationFactory) -> None:
    st = make_station("2.0.1")
    await st.start()
    session = await st.start_session(2, "TAG-2", meter_start_wh=10)
    await st.send_meter_values(2, 500, 11000)
    await st.send_meter_values(2, 900)
    await st.stop_session(2, 1200, reason="EVDisconnected")
    cp = csms.chargers["CP1"]
    events = cp.payloads("TransactionEvent")
    assert [(e["eventType"], e["seqNo"], e["triggerReason"]) for e in events] == [
        ("Started", 0, "Authorized"), ("Updated", 1, "MeterValuePeriodic"),
        ("Updated", 2, "MeterValuePeriodic"), ("Ended", 3, "EVCommunicationLost")]
    assert {e["transactionInfo"]["transactionId"] for e in events} == {session.transaction_id}
    assert events[0]["evse"] == {"id": 2, "connectorId": 1}
    assert events[0]["idToken"] == {"idToken": "TAG-2", "type": "ISO14443"}
    assert events[0]["meterValue"][0]["sampledValue"][0]["value"] == 10
    assert events[3]["transactionInfo"]["stoppedReason"] == "EVDisconnected"
    assert events[3]["meterValue"][0]["sampledValue"][0]["context"] == "Transaction.End"
    statuses = [(p["evseId"], p["connectorStatus"]) for p in cp.payloads("StatusNotification")]
    assert statuses[2:] == [(2, "Occupied"), (2, "Available")]
    # Outside a transaction, meter values go in MeterValues (J01).
    await st.send_meter_values(1, 77)
    assert cp.payloads("MeterValues")[0]["evseId"] == 1


@pytest.mark.parametrize("protocol", ["1.6", "2.0.1"])
async def test_refused_token(csms: MiniCsms, make_station: StationFactory, protocol: str) -> None:
    csms.invalid_tags.add("BAD")
    st = make_station(protocol)
    await st.start()
    with pytest.raises(SessionRejected, match="Invalid"):
        await st.start_session(1, "BAD")
    assert not st.sessions
    with pytest.raises(SessionRejected):
        await st.start_session(1, "BAD", authorize=False)  # refused by the transaction answer
    assert not st.sessions
    cp = csms.chargers["CP1"]
    if protocol == "1.6":
        assert cp.payloads("StopTransaction")[0]["reason"] == "DeAuthorized"
    else:
        ended = cp.payloads("TransactionEvent")[-1]
        assert ended["transactionInfo"]["stoppedReason"] == "DeAuthorized"


async def test_remote_start_stop_16(csms: MiniCsms, make_station: StationFactory) -> None:
    st = make_station("1.6")
    await st.start()
    cp = csms.chargers["CP1"]
    answer = await ask_raw(cp, "RemoteStartTransaction", {"idTag": "REMOTE"})
    assert answer.payload == {"status": "Accepted"}
    start = (await csms.wait_action("CP1", "StartTransaction"))[0]
    assert start["connectorId"] == 1 and "Authorize" not in cp.actions()
    await csms.wait_action("CP1", "StatusNotification", count=5)  # Preparing, Charging
    busy = await ask_raw(cp, "RemoteStartTransaction", {"idTag": "X", "connectorId": 1})
    assert busy.payload == {"status": "Rejected"}
    tx = st.sessions[1].transaction_id
    answer = await ask_raw(cp, "RemoteStopTransaction", {"transactionId": tx})
    assert answer.payload == {"status": "Accepted"}
    stop = (await csms.wait_action("CP1", "StopTransaction"))[0]
    assert (stop["transactionId"], stop["reason"]) == (tx, "Remote")


async def test_remote_start_stop_201(csms: MiniCsms, make_station: StationFactory) -> None:
    st = make_station("2.0.1")
    await st.start()
    cp = csms.chargers["CP1"]
    answer = await ask_raw(cp, "RequestStartTransaction", {
        "idToken": {"idToken": "REMOTE", "type": "Central"}, "remoteStartId": 42})
    assert answer.payload is not None and answer.payload["status"] == "Accepted"
    started = (await csms.wait_action("CP1", "TransactionEvent"))[0]
    assert started["triggerReason"] == "RemoteStart"
    assert started["transactionInfo"]["remoteStartId"] == 42
    assert started["transactionInfo"]["transactionId"] == answer.payload["transactionId"]
    assert started["idToken"]["type"] == "Central"
    unlock = await ask_raw(cp, "UnlockConnector", {"evseId": 1, "connectorId": 1})
    assert unlock.payload == {"status": "OngoingAuthorizedTransaction"}
    answer = await ask_raw(cp, "RequestStopTransaction",
                           {"transactionId": answer.payload["transactionId"]})
    assert answer.payload == {"status": "Accepted"}
    events = await csms.wait_action("CP1", "TransactionEvent", count=2)
    assert events[1]["triggerReason"] == "RemoteStop"
    assert events[1]["transactionInfo"]["stoppedReason"] == "Remote"


async def test_unlock_stops_session_16(csms: MiniCsms, make_station: StationFactory) -> None:
    st = make_station("1.6")
    await st.start()
    await st.start_session(2, "TAG")
    answer = await ask_raw(csms.chargers["CP1"], "UnlockConnector", {"connectorId": 2})
    assert answer.payload == {"status": "Unlocked"}
    assert csms.chargers["CP1"].payloads("StopTransaction")[0]["reason"] == "UnlockCommand"
    assert not st.sessions
