"""The cluster link batches engine events and notices (real Mosquitto, in process).

One MQTT message per charger message made a busy non-leader node spend most of its time in the
MQTT client (and aiomqtt logged a warning per publish beyond ten in flight). These tests check
what batching must keep: every event reaches the leader's inbox once and in order, across a
broker restart and a batch that comes twice too; notices reach the other nodes and not their
sender; and a burst travels in a handful of MQTT messages.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
import pytest

from csms.cluster.link import MAX_BATCH, ClusterLink, EngineInbox
from csms.settings import MqttSettings
from tests.e2e.helpers import until
from tests.mqtt.brokers import SYSTEM_BROKER_PORT, PrivateBroker


def settings(port: int = SYSTEM_BROKER_PORT) -> MqttSettings:
    return MqttSettings(port=port, topic_prefix=f"batch-{uuid.uuid4().hex[:10]}",
                        reconnect_initial=0.05, reconnect_max=0.2)


class Links:
    """Links and inboxes started by a test, stopped at its end."""

    def __init__(self) -> None:
        self.started: list[Any] = []

    async def link(self, config: MqttSettings, node: str) -> ClusterLink:
        link = ClusterLink(config, node)
        await link.start()
        assert link.connected
        self.started.append(link)
        return link

    async def inbox(self, config: MqttSettings) -> tuple[EngineInbox, list[Any]]:
        got: list[Any] = []
        inbox = EngineInbox(config, got.append)
        await inbox.start()
        self.started.append(inbox)
        return inbox, got


@pytest.fixture
async def links() -> AsyncIterator[Links]:
    made = Links()
    yield made
    for item in reversed(made.started):
        await item.stop()


async def subscribed(inbox_got: list[Any], send: Callable[[dict[str, Any]], None]) -> None:
    """Send probes until the inbox has its subscription (the first ones may be missed)."""
    async def probe() -> bool:
        send({"probe": True})
        await asyncio.sleep(0.05)
        return bool(inbox_got)

    for _ in range(100):
        if await probe():
            break
    await asyncio.sleep(0.2)
    inbox_got.clear()


async def test_a_burst_of_engine_events_arrives_whole_in_order_in_few_messages(
    links: Links,
) -> None:
    config = settings()
    _, got = await links.inbox(config)
    follower = await links.link(config, "follower")
    await subscribed(got, follower.send_engine_input)
    sent_before = follower._engine.messages

    events = [{"n": n, "station_id": f"CP{n % 7}"} for n in range(2_000)]
    for event in events:
        follower.send_engine_input(event)
    await until(lambda: len(got) >= len(events), timeout=10)
    await asyncio.sleep(0.1)
    assert got == events
    assert follower.engine_backlog == 0
    assert follower._engine.messages - sent_before == len(events) // MAX_BATCH


async def test_notices_reach_the_other_nodes_not_their_sender(links: Links) -> None:
    config = settings()
    a = await links.link(config, "a")
    b = await links.link(config, "b")
    seen_by: dict[str, list[Any]] = {"a": [], "b": []}
    a.on_notice = seen_by["a"].append
    b.on_notice = seen_by["b"].append
    await asyncio.sleep(0.2)  # both subscriptions are in place
    for n in range(300):
        a.publish_notice({"n": n})
    await until(lambda: len(seen_by["b"]) >= 300, timeout=10)
    assert seen_by["b"] == [{"n": n} for n in range(300)]
    assert seen_by["a"] == []


async def test_engine_events_wait_for_the_broker_and_are_then_delivered(
    links: Links, tmp_path: Path
) -> None:
    (tmp_path / "mosquitto").mkdir()
    broker = PrivateBroker(tmp_path / "mosquitto")
    await broker.start()
    try:
        config = settings(broker.port)
        _, got = await links.inbox(config)
        follower = await links.link(config, "follower")
        await subscribed(got, follower.send_engine_input)

        await broker.stop()
        await until(lambda: not follower.connected, timeout=10)
        during = [{"n": n} for n in range(1_200)]
        for event in during:
            follower.send_engine_input(event)
        await asyncio.sleep(0.3)
        assert follower.engine_backlog == len(during)  # held, in order, nothing lost

        await broker.start()
        await until(lambda: len(got) >= len(during), timeout=20)
        await asyncio.sleep(0.2)
        # every event once, in order (a batch published again after a lost acknowledgement,
        # or given again by the broker, is dropped by the inbox)
        assert [event["n"] for event in got] == list(range(len(during)))
        assert follower.engine_backlog == 0
    finally:
        await broker.stop()


async def test_a_batch_that_comes_again_is_delivered_once(links: Links) -> None:
    """The inbox drops a numbered batch it already had from the same sender (the broker
    redelivers what the leader's session had not acknowledged; a sender publishes again when
    the broker's acknowledgement was lost): the engine sees each event once. Another sender's
    batch with the same number, and an unnumbered message of an older node, still arrive."""
    config = settings()
    inbox, got = await links.inbox(config)
    topic = f"{config.topic_prefix}/_cluster/engine"

    def batch(origin: str, seq: int, *numbers: int) -> bytes:
        return orjson.dumps({"from": "n", "origin": origin, "seq": seq,
                             "events": [{"n": n} for n in numbers]})

    async with aiomqtt.Client("127.0.0.1", SYSTEM_BROKER_PORT) as client:
        for _ in range(100):  # until the inbox's subscription is in place
            await client.publish(topic, batch("probe", len(got) + 1, -1), qos=1)
            await asyncio.sleep(0.05)
            if got:
                break
        await asyncio.sleep(0.2)
        got.clear()
        for payload in (batch("a/1", 1, 1, 2), batch("a/1", 1, 1, 2), batch("a/1", 2, 3),
                        batch("b/1", 1, 10), batch("a/1", 2, 3), batch("a/1", 1, 1, 2),
                        batch("a/2", 1, 4), orjson.dumps({"n": 5})):
            await client.publish(topic, payload, qos=1)
        await until(lambda: len(got) >= 6, timeout=10)
        await asyncio.sleep(0.2)
    assert [event["n"] for event in got] == [1, 2, 3, 10, 4, 5]
    assert inbox.duplicates == 5


class AckLost(ClusterLink):
    """A link whose first engine batch reaches the broker but whose acknowledgement is
    lost: the publish fails after the broker took it."""

    lost = 0

    async def _publish(self, topic: str, message: Any, qos: int) -> None:
        await super()._publish(topic, message, qos)
        if topic.endswith("/engine") and "probe" not in str(message) and not self.lost:
            self.lost += 1
            raise aiomqtt.MqttError("acknowledgement lost")


async def test_a_batch_published_again_after_a_lost_ack_is_delivered_once(
    links: Links,
) -> None:
    config = settings()
    inbox, got = await links.inbox(config)
    follower = AckLost(config, "follower")
    await follower.start()
    links.started.append(follower)
    await subscribed(got, lambda event: follower.send_engine_input({**event, "probe": 1}))

    for n in range(50):
        follower.send_engine_input({"n": n})
    await until(lambda: len(got) >= 50 and follower.engine_backlog == 0, timeout=10)
    await asyncio.sleep(0.2)
    assert follower.lost == 1 and inbox.duplicates > 0  # the batch did come twice...
    assert [event["n"] for event in got] == list(range(50))  # ...and was delivered once
