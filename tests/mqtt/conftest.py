"""Fixtures of the MQTT tests: a unique topic prefix, a subscriber on the system broker, a
private broker (see :mod:`tests.mqtt.brokers`)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.mqtt.brokers import SYSTEM_BROKER_PORT, PrivateBroker, Subscriber, clear_retained


@pytest.fixture
def prefix() -> str:
    """A topic prefix of this test only (the system broker is shared)."""
    return f"csms-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def system_subscriber(prefix: str) -> AsyncIterator[Subscriber]:
    """Everything under ``{prefix}/#`` on the system broker (127.0.0.1:1883), at QoS 1.

    Fails, never skips, when the broker is unreachable: CI starts it. Request it before
    ``make_central`` so that it still listens while the central system stops.
    """
    subscriber = Subscriber(SYSTEM_BROKER_PORT, f"{prefix}/#")
    try:
        await subscriber.start()
    except Exception as exc:
        pytest.fail(f"Mosquitto is unreachable on 127.0.0.1:{SYSTEM_BROKER_PORT} "
                    f"(start it: the MQTT tests need the real broker): {exc!r}", pytrace=False)
    yield subscriber
    await subscriber.stop()
    retained = {m.topic for m in subscriber.messages if m.topic.endswith("/online")}
    await clear_retained(SYSTEM_BROKER_PORT, retained)


@pytest.fixture
async def private_broker(tmp_path: Path) -> AsyncIterator[PrivateBroker]:
    """A running Mosquitto of this test's own (stopped at the end)."""
    directory = tmp_path / "mosquitto"
    directory.mkdir()
    broker = PrivateBroker(directory)
    await broker.start()
    yield broker
    await broker.stop()
