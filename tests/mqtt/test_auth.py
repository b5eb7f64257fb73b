"""Broker credentials: the user name from the settings, the password from the secret."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from csms.bus import EventBus, Topic
from csms.mqtt import MqttPublisher
from csms.settings import MqttSettings
from tests.e2e.helpers import until
from tests.mqtt.brokers import PrivateBroker, Subscriber


@pytest.fixture
async def locked_broker(tmp_path: Path) -> AsyncIterator[PrivateBroker]:
    """A private Mosquitto that refuses anonymous clients."""
    broker = PrivateBroker(tmp_path, users={"csms": "s3cret", "watcher": "w"})
    await broker.start()
    yield broker
    await broker.stop()


def _publisher(broker: PrivateBroker, password: str) -> tuple[MqttPublisher, EventBus]:
    bus = EventBus()
    settings = MqttSettings(enabled=True, port=broker.port, username="csms",
                            password=SecretStr(password), reconnect_initial=0.05,
                            reconnect_max=0.2)
    return MqttPublisher(settings, bus, node_id="auth"), bus


async def test_publishes_with_the_configured_credentials(locked_broker: PrivateBroker) -> None:
    subscriber = Subscriber(locked_broker.port, "csms/#", username="watcher", password="w")
    await subscriber.start()
    publisher, bus = _publisher(locked_broker, "s3cret")
    try:
        await publisher.start()
        bus.emit(Topic.TICKET, "opened", "CP-1", {"priority": "P2"})
        await until(lambda: bool(subscriber.on("csms/ticket/CP-1/opened")))
    finally:
        await publisher.stop()
        await subscriber.stop()
    assert subscriber.on("csms/ticket/CP-1/opened")[0].json["data"] == {"priority": "P2"}
    assert publisher.errors == 0


async def test_wrong_password_is_refused_and_retried(locked_broker: PrivateBroker) -> None:
    publisher, bus = _publisher(locked_broker, "wrong")
    try:
        await publisher.start()
        bus.emit(Topic.TICKET, "opened", "CP-1", {})
        await until(lambda: publisher.errors >= 2)
        assert publisher.connects == 0 and publisher.buffered == 1
    finally:
        await publisher.stop()
