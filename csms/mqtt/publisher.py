"""Operations events to an MQTT broker: buffered, in order, at least once.

The bus subscriber only encodes the notice and appends it to a bounded
:class:`~csms.mqtt.outbox.Outbox`; one task keeps a connection (aiomqtt) and publishes the
buffer head by head. aiomqtt's ``publish()`` returns when paho reports the message published,
which for QoS 1 is the broker's PUBACK (QoS 2: PUBCOMP), so a message leaves the buffer only
once the broker has it. A lost connection is noticed by a watcher on the client's message
stream (a pending ``publish()`` alone would wait for its timeout), the task backs off
(exponential, with jitter) and publishes again from the first unacknowledged message: a
message may arrive twice after a reconnect, none is lost unless the buffer overflows.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Coroutine
from typing import Any

import aiomqtt
import orjson

from csms.bus import EventBus, Notice, Topic
from csms.logs import get_logger
from csms.mqtt.backoff import backoff_delay
from csms.mqtt.outbox import Outbox, Outgoing
from csms.mqtt.topics import check_prefix, node_online_topic, notice_topic, station_online_topic
from csms.settings import MqttSettings

log = get_logger("csms.mqtt")

TRUE, FALSE = b"true", b"false"
PUBLISH_TIMEOUT = 10.0
"""Seconds to wait for the broker's acknowledgement before the connection is given up."""


class MqttPublisher:
    """The MQTT component: subscribe to the bus, keep a connection, publish the buffer.

    Counters for monitoring: :attr:`published`, :attr:`dropped`, :attr:`buffered`,
    :attr:`connected`, :attr:`connects`, :attr:`reconnects`, :attr:`errors`,
    :attr:`unencodable`, :attr:`rejected`, and :attr:`delays` (the last back-off waits).
    """

    def __init__(
        self, settings: MqttSettings, bus: EventBus, *, node_id: str,
        flush_timeout: float = 5.0,
    ) -> None:
        self.settings = settings
        self.prefix = check_prefix(settings.topic_prefix)
        self.client_id = settings.client_id or f"csms-{node_id}"
        self.node_topic = node_online_topic(self.prefix, node_id)
        self.flush_timeout = flush_timeout
        """Seconds :meth:`stop` keeps publishing what is buffered before it gives up."""
        self.outbox = Outbox(settings.buffer_size)
        self.published = 0
        """Messages acknowledged by the broker (the node's own ``online`` messages excluded)."""
        self.connected = False
        self.connects = 0
        """Successful connections (the first one included)."""
        self.errors = 0
        """Failed connection attempts and lost connections."""
        self.unencodable = 0
        """Notices that could not be serialised to JSON (logged and skipped)."""
        self.rejected = 0
        """Messages the MQTT client refused to send (logged and skipped)."""
        self.delays: deque[float] = deque(maxlen=32)
        """The last back-off waits, in seconds."""
        self._bus = bus
        self._unsubscribe = bus.subscribe(self.accept)
        self._ready = asyncio.Event()
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def buffered(self) -> int:
        """Messages waiting for the broker's acknowledgement."""
        return len(self.outbox)

    @property
    def dropped(self) -> int:
        """Messages dropped because the buffer was full while the broker was away."""
        return self.outbox.dropped

    @property
    def reconnects(self) -> int:
        """Successful connections after the first one."""
        return max(0, self.connects - 1)

    # ------------------------------------------------------------------ bus side (sync)

    def accept(self, notice: Notice) -> None:
        """Bus subscriber: buffer ``notice`` (and a station's retained ``online`` state).

        Another node's notices (cluster mode) are left to that node's own publisher."""
        if notice.origin is not None:
            return
        try:
            payload = orjson.dumps(notice.to_dict(), option=orjson.OPT_NON_STR_KEYS)
        except TypeError:
            self.unencodable += 1
            log.exception("mqtt_notice_unencodable", topic=notice.topic.value,
                          kind=notice.kind, station_id=notice.station_id)
            return
        self.outbox.append(Outgoing(notice_topic(self.prefix, notice), payload))
        if notice.topic is Topic.STATION and notice.station_id is not None and notice.kind in (
            "connected", "disconnected"
        ):
            online = TRUE if notice.kind == "connected" else FALSE
            self.outbox.append(Outgoing(station_online_topic(self.prefix, notice.station_id),
                                        online, retain=True))
        self._ready.set()

    # ------------------------------------------------------------------ component

    async def start(self) -> None:
        """Start the connection task (returns at once; the broker may still be away)."""
        if self._task is None:
            self._closing.clear()
            self._task = asyncio.create_task(self._run(), name="csms-mqtt")
            log.info("mqtt_starting", host=self.settings.host, port=self.settings.port,
                     client_id=self.client_id, prefix=self.prefix)

    async def stop(self) -> None:
        """Stop listening, publish what is buffered for at most :attr:`flush_timeout`
        seconds (retained node ``online`` ``false`` last), then disconnect."""
        self._unsubscribe()
        task, self._task = self._task, None
        if task is None:
            return
        self._closing.set()
        self._ready.set()
        await asyncio.wait({task}, timeout=self.flush_timeout)
        if not task.done():
            task.cancel()
            await asyncio.wait({task})
        if not task.cancelled() and task.exception() is not None:
            log.error("mqtt_task_failed", error=repr(task.exception()))
        if self.outbox:
            log.warning("mqtt_unsent_at_stop", messages=len(self.outbox))
        log.info("mqtt_stopped", published=self.published, dropped=self.dropped,
                 reconnects=self.reconnects)

    # ------------------------------------------------------------------ connection task

    async def _run(self) -> None:
        failures = 0
        while True:
            connects = self.connects
            try:
                await self._session()
                return  # closing, everything flushed
            except Exception as exc:  # MqttError mostly; nothing may end the task
                self.errors += 1
                if not isinstance(exc, aiomqtt.MqttError):
                    log.exception("mqtt_session_failed")
                failures = 1 if self.connects > connects else failures + 1
                if self._closing.is_set():
                    log.warning("mqtt_gave_up_at_stop", error=str(exc), buffered=self.buffered)
                    return
                delay = backoff_delay(failures, self.settings.reconnect_initial,
                                      self.settings.reconnect_max)
                self.delays.append(delay)
                log.warning("mqtt_connection_failed", error=str(exc), retry_in=round(delay, 3),
                            attempt=failures, buffered=self.buffered)
                # Stopping cuts the wait short: one more attempt, at once, to flush the buffer.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), delay)

    async def _session(self) -> None:
        """One connection: announce the node, publish until closing, then say goodbye."""
        settings = self.settings
        password = settings.password.get_secret_value() if settings.password else None
        client = aiomqtt.Client(
            settings.host, settings.port, username=settings.username, password=password,
            identifier=self.client_id, keepalive=settings.keepalive, timeout=PUBLISH_TIMEOUT,
            will=aiomqtt.Will(self.node_topic, FALSE, qos=settings.qos, retain=True),
        )
        async with client:
            self.connects += 1
            self.connected = True
            log.info("mqtt_connected", host=settings.host, port=settings.port,
                     buffered=self.buffered, reconnects=self.reconnects)
            try:
                await _first_of(self._watch(client), self._drain(client))
                await client.publish(self.node_topic, FALSE, qos=settings.qos, retain=True)
            finally:
                self.connected = False

    async def _drain(self, client: aiomqtt.Client) -> None:
        """Publish the buffer head by head; return once closing and empty."""
        await client.publish(self.node_topic, TRUE, qos=self.settings.qos, retain=True)
        while True:
            message = self.outbox.head()
            if message is None:
                if self._closing.is_set():
                    return
                self._ready.clear()
                await self._ready.wait()
                continue
            try:
                await client.publish(message.topic, message.payload, qos=self.settings.qos,
                                     retain=message.retain)
            except ValueError:  # paho refuses it (e.g. a topic over 65535 bytes): skip it
                self.rejected += 1
                self.outbox.acknowledge(message)
                log.exception("mqtt_message_rejected", topic=message.topic[:200])
                continue
            if self.outbox.acknowledge(message):
                self.published += 1

    @staticmethod
    async def _watch(client: aiomqtt.Client) -> None:
        """Raise :class:`aiomqtt.MqttError` as soon as the connection is lost."""
        async for _ in client.messages:
            pass  # nothing is subscribed; the iterator ends with an error on disconnect
        raise aiomqtt.MqttError("connection closed")


async def _first_of(*coroutines: Coroutine[Any, Any, None]) -> None:
    """Run ``coroutines`` until the first one ends; cancel the others; re-raise an error."""
    tasks = [asyncio.ensure_future(coroutine) for coroutine in coroutines]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks)
        errors = [error for task in tasks
                  if not task.cancelled() and (error := task.exception()) is not None]
    if errors:
        raise errors[0]
