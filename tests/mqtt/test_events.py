"""Operations events on the system Mosquitto (127.0.0.1:1883): simulated chargers against the
real central system, the diagnostics ladder on a shrunk clock, a subscriber at QoS 1."""

from __future__ import annotations

import json
from typing import Any

from csms.app import CentralSystem
from csms.bus import Notice
from csms.mqtt import MqttPublisher
from csms.settings import MqttSettings
from tests.conftest import MakeCentral
from tests.e2e.helpers import STATIONS, until
from tests.mqtt.brokers import SYSTEM_BROKER_PORT, Received, Subscriber

TIME_SCALE = 0.004
ENVELOPE = {"topic", "kind", "station_id", "at", "data"}


async def _central(make_central: MakeCentral, prefix: str) -> CentralSystem:
    settings = MqttSettings(enabled=True, port=SYSTEM_BROKER_PORT, topic_prefix=prefix,
                            client_id=f"csms-{prefix}")
    return await make_central(diagnostics_time_scale=TIME_SCALE, settings={"mqtt": settings})


def _payloads(subscriber: Subscriber, topic: str) -> list[dict[str, Any]]:
    return [message.json for message in subscriber.on(topic)]


def _runs_finished(subscriber: Subscriber, topic: str, outcome: str) -> bool:
    return any(p["data"].get("outcome") == outcome for p in _payloads(subscriber, topic))


async def test_station_fault_ladder_and_ticket_events(
    system_subscriber: Subscriber, make_central: MakeCentral, prefix: str
) -> None:
    central = await _central(make_central, prefix)
    publisher = central.api.extras["mqtt"]
    assert isinstance(publisher, MqttPublisher)
    produced: list[Notice] = []
    central.bus.subscribe(produced.append)
    sub = system_subscriber
    fix, safe = "MQTT-FIX", "MQTT-SAFE"

    async with STATIONS["1.6"](fix, central.ocpp_url, scenario="fixed-by-unlock"), \
            STATIONS["2.0.1"](safe, central.ocpp_url, scenario="safety-fault"):
        await until(lambda: _runs_finished(sub, f"{prefix}/run/{fix}/finished", "fixed")
                    and bool(sub.on(f"{prefix}/ticket/{safe}/opened")), timeout=20)

        # Station: connected (with its retained online state), booted, status.
        (connected,) = _payloads(sub, f"{prefix}/station/{fix}/connected")
        assert connected["data"]["protocol"] == "1.6"
        assert [m.payload for m in sub.on(f"{prefix}/station/{fix}/online")] == [b"true"]
        (booted,) = _payloads(sub, f"{prefix}/station/{fix}/booted")
        assert booted["data"]["vendor"] == "SimVendor"
        statuses = _payloads(sub, f"{prefix}/station/{fix}/status")
        assert any(s["data"]["status"] == "Faulted" and s["data"]["connector_id"] == 1
                   and s["data"]["error_code"] == "ConnectorLockFailure" for s in statuses)
        # Fault reported, then the ladder: run started -> steps -> finished (fixed by unlock).
        faults = _payloads(sub, f"{prefix}/fault/{fix}/reported")
        assert faults and faults[0]["data"]["code"] == "ConnectorLockFailure"
        assert faults[0]["data"]["vendor_code"] == "CX001"
        (finished,) = [p for p in _payloads(sub, f"{prefix}/run/{fix}/finished")
                       if p["data"]["outcome"] == "fixed"]
        run_id = finished["data"]["run_id"]
        topics = [m.topic for m in sub.messages
                  if m.topic.startswith(f"{prefix}/run/{fix}/") and m.json["data"]["run_id"]
                  == run_id]
        kinds = [topic.rsplit("/", 1)[1] for topic in topics]
        assert kinds[0] == "started" and kinds[-1] == "finished", kinds
        assert "step" in kinds[1:-1], kinds
        commands = _payloads(sub, f"{prefix}/command/{fix}/finished")
        unlock = [c["data"] for c in commands if c["data"]["action"] == "UnlockConnector"]
        assert unlock and unlock[0]["result"] == "accepted" and unlock[0]["source"] == "engine"
        assert unlock[0]["run_id"] == run_id
        # The safety fault is never reset remotely: a P1 ticket.
        (opened,) = _payloads(sub, f"{prefix}/ticket/{safe}/opened")
        assert opened["data"]["priority"] == "P1" and opened["data"]["status"] == "open"
        assert opened["station_id"] == safe

    # Every notice of the bus arrived once, at QoS 1, on its documented topic, as produced.
    await until(lambda: publisher.buffered == 0 and len(_notices(sub)) >= len(produced))
    expected = [(_topic(prefix, n), json.loads(json.dumps(n.to_dict()))) for n in produced]
    notices = _notices(sub)
    assert all(m.qos == 1 for m in sub.messages)
    for message in notices:
        envelope = message.json
        assert set(envelope) == ENVELOPE
        assert message.topic == _topic(prefix, envelope)
    assert [(m.topic, m.json) for m in notices][:len(expected)] == expected
    assert publisher.published >= len(expected) and publisher.dropped == 0


def _notices(subscriber: Subscriber) -> list[Received]:
    return [m for m in subscriber.messages if not m.topic.endswith("/online")]


def _topic(prefix: str, notice: Notice | dict[str, Any]) -> str:
    """The documented topic of a notice (or envelope) of a station with a plain id."""
    envelope = notice.to_dict() if isinstance(notice, Notice) else notice
    return f"{prefix}/{envelope['topic']}/{envelope['station_id']}/{envelope['kind']}"


async def test_online_states_are_retained_and_node_says_hello(
    system_subscriber: Subscriber, make_central: MakeCentral, prefix: str
) -> None:
    central = await _central(make_central, prefix)
    async with STATIONS["2.0.1"]("MQTT-ON", central.ocpp_url):
        await until(lambda: bool(system_subscriber.on(f"{prefix}/station/MQTT-ON/online")))
        # A dashboard that subscribes later still gets the current states (retained).
        late = Subscriber(SYSTEM_BROKER_PORT, f"{prefix}/+/+/online")
        await late.start()
        try:
            await until(lambda: len(late.messages) >= 2)
        finally:
            await late.stop()
    states = {m.topic: (m.payload, m.retain) for m in late.messages}
    assert states == {
        f"{prefix}/station/MQTT-ON/online": (b"true", True),
        f"{prefix}/node/test-node/online": (b"true", True),
    }
    await until(lambda: [m.payload for m in system_subscriber.on(
        f"{prefix}/station/MQTT-ON/online")] == [b"true", b"false"])
