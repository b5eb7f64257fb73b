"""The publisher on its own against the system Mosquitto: awkward station ids, the flush at
stop, the last will."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from csms.bus import EventBus, Topic
from csms.mqtt import MqttPublisher, decode_level
from csms.settings import MqttSettings
from tests.e2e.helpers import until
from tests.mqtt.brokers import SYSTEM_BROKER_PORT, Subscriber

ROOT = Path(__file__).resolve().parents[2]


def _publisher(prefix: str, bus: EventBus, **settings: object) -> MqttPublisher:
    return MqttPublisher(MqttSettings(enabled=True, port=SYSTEM_BROKER_PORT,
                                      topic_prefix=prefix, client_id=f"csms-{prefix}",
                                      **settings), bus, node_id="unit/node")


async def test_awkward_station_ids_are_one_topic_level(
    system_subscriber: Subscriber, prefix: str
) -> None:
    ids = ["site/bay 7", "a+b#c", "nul\x00x", "Zürich", "100%", "-", "$SYS"]
    bus = EventBus()
    publisher = _publisher(prefix, bus)
    await publisher.start()
    try:
        for station_id in ids:
            bus.emit(Topic.FAULT, "reported", station_id, {"code": "X"})
        bus.emit(Topic.REPORT, "received", None, {"category": "other"})
        await until(lambda: len(system_subscriber.on_kind("reported")) == len(ids)
                    and len(system_subscriber.on_kind("received")) == 1)
    finally:
        await publisher.stop()
    levels = [m.topic.split("/") for m in system_subscriber.on_kind("reported")]
    assert all(len(parts) == 4 and parts[:2] == [prefix, "fault"] for parts in levels)
    assert [decode_level(parts[2]) for parts in levels] == ids
    assert [m.json["station_id"] for m in system_subscriber.on_kind("reported")] == ids
    (report,) = system_subscriber.on_kind("received")
    assert report.topic == f"{prefix}/report/-/received" and report.json["station_id"] is None


async def test_stop_flushes_the_buffer_then_says_offline(
    system_subscriber: Subscriber, prefix: str
) -> None:
    bus = EventBus()
    publisher = _publisher(prefix, bus)
    for index in range(300):  # buffered before the connection exists
        bus.emit(Topic.RUN, "step", "CP-1", {"index": index})
    await publisher.start()
    await publisher.stop()
    assert publisher.buffered == 0 and publisher.published == 300
    node = f"{prefix}/node/unit%2Fnode/online"
    await until(lambda: [m.payload for m in system_subscriber.on(node)] == [b"true", b"false"])
    steps = [m.json["data"]["index"] for m in system_subscriber.on_kind("step")]
    assert steps == list(range(300))
    bus.emit(Topic.RUN, "step", "CP-1", {"index": 300})  # unsubscribed at stop
    assert publisher.buffered == 0


LAST_WILL_SCRIPT = """
import asyncio, sys
from csms.bus import EventBus
from csms.mqtt import MqttPublisher
from csms.settings import MqttSettings

async def main() -> None:
    prefix = sys.argv[1]
    publisher = MqttPublisher(MqttSettings(enabled=True, topic_prefix=prefix,
                                           client_id="csms-" + prefix, keepalive=5),
                              EventBus(), node_id="doomed")
    await publisher.start()
    await asyncio.sleep(60)

asyncio.run(main())
"""


async def test_broker_publishes_the_last_will_when_the_node_dies(
    system_subscriber: Subscriber, prefix: str
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", LAST_WILL_SCRIPT, prefix, cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )
    node = f"{prefix}/node/doomed/online"
    try:
        await until(lambda: bool(system_subscriber.on(node)), timeout=10)
    finally:
        process.kill()  # no DISCONNECT: the broker sends the will
        await process.wait()
    await until(lambda: [m.payload for m in system_subscriber.on(node)] == [b"true", b"false"])
