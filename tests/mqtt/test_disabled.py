"""MQTT is off by default: the embedded default needs no broker and never dials one."""

from __future__ import annotations

import asyncio

import pytest

from csms import mqtt
from csms.app import CentralSystem
from csms.mqtt import MqttPublisher
from csms.settings import MqttSettings, Settings
from tests.conftest import MakeCentral
from tests.e2e.helpers import STATIONS, until


def test_default_settings_leave_mqtt_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CSMS_MQTT__ENABLED", raising=False)
    assert Settings().mqtt.enabled is False  # shipped config/csms.toml included
    assert MqttSettings().enabled is False


async def test_default_central_has_no_publisher(central: CentralSystem) -> None:
    assert mqtt.install(central) is None
    assert "mqtt" not in central.api.extras
    assert not any(isinstance(c, MqttPublisher) for c in central.components)


async def test_disabled_mqtt_never_connects(make_central: MakeCentral) -> None:
    """Pointed at a listener of the test's own but disabled: no connection while a charger
    boots, reports and leaves."""
    accepted: list[int] = []

    async def count(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        writer.close()

    listener = await asyncio.start_server(count, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        central = await make_central(settings={"mqtt": MqttSettings(
            enabled=False, port=port, reconnect_initial=0.01)})
        seen: list[object] = []
        central.bus.subscribe(seen.append)
        async with STATIONS["1.6"]("MQTT-OFF", central.ocpp_url) as station:
            await station.set_status(1, "Preparing")
            await until(lambda: len(seen) >= 3)
        await asyncio.sleep(0.2)  # a publisher would have dialled by now (and again)
    finally:
        listener.close()
        await listener.wait_closed()
    assert accepted == []
    assert "mqtt" not in central.api.extras
