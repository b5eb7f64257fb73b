"""Operations events published to an MQTT broker (off by default; see README.md, "MQTT events").

Topic scheme: :mod:`csms.mqtt.topics`; buffering, QoS and reconnects:
:mod:`csms.mqtt.publisher`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from csms.components import Component
from csms.mqtt.publisher import MqttPublisher
from csms.mqtt.topics import decode_level, encode_level, notice_topic

if TYPE_CHECKING:
    from csms.app import CentralSystem

__all__ = ["MqttPublisher", "decode_level", "encode_level", "install", "notice_topic"]


def install(central: CentralSystem) -> Component | None:
    """The MQTT publisher when ``mqtt.enabled`` (also ``central.api.extras["mqtt"]``), else
    ``None``: no subscription, no connection attempt."""
    settings = central.settings.mqtt
    if not settings.enabled:
        return None
    publisher = MqttPublisher(settings, central.bus, node_id=central.settings.node_id)
    central.api.extras["mqtt"] = publisher
    return publisher
