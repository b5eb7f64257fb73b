"""A broker restart loses nothing: a private Mosquitto (with persistence) is stopped while events
keep coming and started again on the same port; the subscriber, with a persistent session,
gets every event exactly as produced, in order per station (duplicates allowed, reported)."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any
from urllib.parse import quote

import pytest

from csms.bus import EventBus, Notice, Topic
from csms.mqtt import MqttPublisher, decode_level
from csms.settings import MqttSettings
from tests.conftest import MakeCentral
from tests.e2e.helpers import STATIONS, until
from tests.mqtt.brokers import PrivateBroker, Received, Subscriber

INITIAL, MAXIMUM = 0.05, 0.4
#: Stations of the notices put on the bus directly (one with every awkward character).
STATIONS_ON_BUS = ("CP-1", "CP/2+#é")
PER_BATCH = 40


def _emit(bus: EventBus, batch: str) -> None:
    for index in range(PER_BATCH):
        station = STATIONS_ON_BUS[index % len(STATIONS_ON_BUS)]
        bus.emit(Topic.STATION, "status", station,
                         {"marker": f"{batch}-{index}", "status": "Available"})


def _key(topic: str, envelope: dict[str, Any]) -> tuple[str, str]:
    return topic, json.dumps(envelope, sort_keys=True)


def _by_station(pairs: list[tuple[str, dict[str, Any]]]) -> dict[str, list[tuple[str, str]]]:
    streams: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for topic, envelope in pairs:
        streams[decode_level(topic.split("/")[2])].append(_key(topic, envelope))
    return streams


async def test_events_survive_a_broker_restart(
    private_broker: PrivateBroker, make_central: MakeCentral, prefix: str,
    record_property: Any,
) -> None:
    broker = private_broker
    subscriber = Subscriber(broker.port, f"{prefix}/#", client_id=f"sub-{prefix}",
                            persistent=True)
    await subscriber.start()
    try:
        central = await make_central(settings={"mqtt": MqttSettings(
            enabled=True, port=broker.port, topic_prefix=prefix, client_id=f"csms-{prefix}",
            reconnect_initial=INITIAL, reconnect_max=MAXIMUM)})
        publisher = central.api.extras["mqtt"]
        assert isinstance(publisher, MqttPublisher)
        produced: list[Notice] = []
        central.bus.subscribe(produced.append)
        await until(lambda: publisher.connected)

        async with STATIONS["1.6"]("SIM-R", central.ocpp_url) as station:
            _emit(central.bus, "A")
            await until(lambda: publisher.buffered == 0)
            # B: still being published when the broker goes down.
            _emit(central.bus, "B")
            await broker.stop()
            await until(lambda: not publisher.connected)
            # C: produced while the broker is away, by the bus and by a charger.
            _emit(central.bus, "C")
            await station.set_status(1, "Preparing")
            await station.set_status(1, "Available")
            await until(lambda: publisher.errors >= 3, timeout=5)
            assert publisher.buffered > 0
            await broker.start()
            await until(lambda: publisher.connected and publisher.buffered == 0, timeout=10)
            _emit(central.bus, "D")
            expected = _by_station([(_topic(prefix, n), _envelope(n)) for n in produced])
            total = sum(len(stream) for stream in expected.values())
            await until(lambda: len(_unique(subscriber.messages)) >= total, timeout=10)
    finally:
        await subscriber.stop()

    received = [m for m in subscriber.messages if not m.topic.endswith("/online")]
    streams = _by_station([(m.topic, m.json) for m in received])
    duplicates = len(received) - len(_unique(received))
    record_property("mqtt_duplicates", duplicates)
    print(f"broker restart: {total} events, {duplicates} duplicate deliveries")
    for station_id, events in expected.items():
        firsts = list(dict.fromkeys(streams[station_id]))
        assert firsts[:len(events)] == events, f"{station_id}: lost or out of order"
    markers = {m.json["data"].get("marker") for m in received} - {None}
    assert markers == {f"{batch}-{i}" for batch in "ABCD" for i in range(PER_BATCH)}
    assert publisher.dropped == 0
    # The connection came back with a growing, bounded back-off.
    assert subscriber.connections >= 2 and broker.starts == 2
    assert publisher.reconnects >= 1
    delays = list(publisher.delays)
    assert len(delays) >= 3
    for attempt, delay in enumerate(delays[:3], start=1):
        ceiling = min(MAXIMUM, INITIAL * 2 ** (attempt - 1))
        assert ceiling / 2 <= delay <= ceiling, (attempt, delays)


def _unique(messages: list[Received]) -> set[tuple[str, bytes]]:
    return {(m.topic, m.payload) for m in messages if not m.topic.endswith("/online")}


def _envelope(notice: Notice) -> dict[str, Any]:
    envelope: dict[str, Any] = json.loads(json.dumps(notice.to_dict()))
    return envelope


def _topic(prefix: str, notice: Notice) -> str:
    station = quote(notice.station_id or "-", safe="")
    return f"{prefix}/{notice.topic.value}/{station}/{notice.kind}"


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
async def test_publisher_waits_for_an_absent_broker(
    private_broker: PrivateBroker, make_central: MakeCentral, prefix: str
) -> None:
    """Started while the broker is away: events are buffered, sent when it appears."""
    broker = private_broker
    subscriber = Subscriber(broker.port, f"{prefix}/#", client_id=f"sub-{prefix}",
                            persistent=True)
    await subscriber.start()  # the broker keeps this session while it is down
    try:
        await broker.stop()
        central = await make_central(settings={"mqtt": MqttSettings(
            enabled=True, port=broker.port, topic_prefix=prefix, client_id=f"csms-{prefix}",
            reconnect_initial=INITIAL, reconnect_max=MAXIMUM)})
        publisher = central.api.extras["mqtt"]
        assert isinstance(publisher, MqttPublisher)
        _emit(central.bus, "E")
        await until(lambda: publisher.errors >= 2)
        assert publisher.buffered == PER_BATCH and not publisher.connected
        assert publisher.connects == 0 and publisher.published == 0
        await broker.start()
        await until(lambda: publisher.buffered == 0)
        await until(lambda: len(_unique(subscriber.messages)) >= PER_BATCH)
    finally:
        await subscriber.stop()
    markers = [m.json["data"]["marker"] for m in subscriber.messages
               if not m.topic.endswith("/online")]
    assert list(dict.fromkeys(markers)) == [f"E-{i}" for i in range(PER_BATCH)]
    assert publisher.published == PER_BATCH
