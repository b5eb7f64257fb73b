"""In-process publish/subscribe of operations events: what MQTT, webhooks, metrics and the
dashboard see.

Producers (the recording backend, the diagnostics runner, the upload endpoints, the driver
report service) publish a :class:`Notice` after the fact is stored; subscribers are plain
callables run synchronously in the publisher's task. A subscriber must not block: it updates a
counter or puts the notice on its own queue (MQTT, webhook, live dashboard stream). A failing
subscriber is logged and never disturbs the publisher or the other subscribers.

``Notice.data`` is JSON-compatible (strings, numbers, booleans, lists, dicts; times as ISO 8601
strings) so that subscribers can serialise it as is.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from csms.logs import get_logger

log = get_logger("csms.bus")


class Topic(enum.StrEnum):
    """What a notice is about (the first level of the MQTT topic scheme).

    ``kind`` refines it:

    - ``station``: ``connected`` / ``disconnected`` (data: protocol, reason), ``booted``
      (vendor, model, firmware_version, reason), ``status`` (evse_id, connector_id, status,
      error_code, vendor_error_code, info);
    - ``fault``: ``reported`` (evse_id, connector_id, code, vendor_code, text, severity...);
    - ``run``: ``started`` / ``step`` / ``finished`` (the run view: phase, current_step,
      steps, outcome...);
    - ``command``: ``finished`` (action, source ``engine`` or ``operator``, result, detail);
    - ``ticket``: ``opened`` / ``updated`` / ``resolved`` (the whole ticket);
    - ``report``: ``received`` / ``status`` (report id, category, status; never the contact
      or the tracking token);
    - ``log``: ``uploaded`` / ``upload_failed`` / ``analysed`` (request_id, size, findings).
    """

    STATION = "station"
    FAULT = "fault"
    RUN = "run"
    COMMAND = "command"
    TICKET = "ticket"
    REPORT = "report"
    LOG = "log"


@dataclass(frozen=True, slots=True)
class Notice:
    """One operations event."""

    topic: Topic
    kind: str
    station_id: str | None
    data: Mapping[str, Any]
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    origin: str | None = None
    """``None`` for this node's own notices; the node name for notices another node shared
    (cluster mode). Subscribers with side effects (MQTT, webhook, metrics, driver reports)
    act on their own node's notices only; live views show all."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON-compatible envelope published on MQTT and the live stream (with
        ``origin`` only for another node's notice)."""
        envelope = {
            "topic": self.topic.value,
            "kind": self.kind,
            "station_id": self.station_id,
            "at": self.at.isoformat(),
            "data": dict(self.data),
        }
        if self.origin is not None:
            envelope["origin"] = self.origin
        return envelope


Subscriber = Callable[[Notice], None]


class EventBus:
    """Fan-out of notices to subscribers, in subscription order."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Add ``subscriber``; returns a function that removes it."""
        self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)

        return unsubscribe

    def publish(self, notice: Notice) -> None:
        """Hand ``notice`` to every subscriber; their errors are logged, never raised."""
        for subscriber in tuple(self._subscribers):
            try:
                subscriber(notice)
            except Exception:
                log.exception("bus_subscriber_failed", topic=notice.topic.value,
                              kind=notice.kind, subscriber=getattr(subscriber, "__qualname__",
                                                                   repr(subscriber)))

    def emit(
        self, topic: Topic, kind: str, station_id: str | None, data: Mapping[str, Any]
    ) -> None:
        """Shorthand for ``publish(Notice(topic, kind, station_id, data))``."""
        self.publish(Notice(topic, kind, station_id, data))

    def __len__(self) -> int:
        return len(self._subscribers)
