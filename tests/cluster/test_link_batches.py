"""The cluster link batches engine events and notices (real Mosquitto, in process).

One MQTT message per charger message made a busy non-leader node spend most of its time in the
MQTT client (and aiomqtt logged a warning per publish beyond ten in flight). These tests check
what batching must keep: every event reaches the leader's inbox once and in order, across a
broker restart too; notices reach the other nodes and not their sender; and a burst travels in
a handful of MQTT messages.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

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
        # at least once, in order: every event, first arrivals in the order sent (a batch
        # whose acknowledgement was lost may come again)
        numbers = [event["n"] for event in got]
        assert list(dict.fromkeys(numbers)) == list(range(len(during)))
        assert follower.engine_backlog == 0
    finally:
        await broker.stop()
