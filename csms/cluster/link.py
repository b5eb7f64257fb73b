"""The nodes' link over the MQTT broker: requests between nodes, shared notices, and the
diagnostics inbox of the leader.

Topics under ``{prefix}/_cluster/``:

- ``rpc/{node}``: requests to ``node`` (``{"id", "from", "kind", "body"}``), QoS 1;
- ``reply/{node}``: answers (``{"id", "ok", "body" | "error"}``), QoS 1;
- ``notices``: every node's operations notices, for the other nodes' live views, QoS 0
  (``{"from", "notices": [...]}``);
- ``engine``: events for the diagnostics engine, QoS 1 (``{"from", "origin", "seq",
  "events": [...]}``). The leader reads them through a persistent session with a fixed
  client id (:class:`EngineInbox`): while no leader is connected the broker keeps them, and
  a new leader taking over the session receives what the old one had not yet been given. A
  second client with that id makes the broker drop the first: a deposed leader cannot go on
  reading.

Notices and engine events travel in batches (:class:`Batcher`): one MQTT message carries what
was queued while the previous one was being published, so a busy node publishes a few
messages per second rather than one per charger message (paho's per-message work and the
broker round trip cost more than the events themselves). A single message of the older form
(``{"from", "notice"}``, or the event itself) is still read.

Engine batches are published at least once (again after a lost connection, and the broker
gives the leader's session again what it had not acknowledged), so each carries its sender's
``origin`` (node and process) and a ``seq`` that grows by one per batch: the inbox drops a
batch whose ``seq`` it already had from that origin, and the engine sees every event once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import aiomqtt
import orjson

from csms.logs import get_logger
from csms.mqtt.backoff import backoff_delay
from csms.settings import MqttSettings
from csms.tasks import cancel_and_wait, stop_if_cancelled

log = get_logger("csms.cluster")

Handler = Callable[[str, Any], Awaitable[Any]]
"""Answers a request: ``(from_node, body) -> body`` (raise to answer with an error)."""


class RemoteError(Exception):
    """The other node answered with an error, or did not answer in time."""


def cluster_topic(prefix: str, *levels: str) -> str:
    """``{prefix}/_cluster/{levels...}``."""
    return "/".join((prefix, "_cluster", *levels))


def _client(settings: MqttSettings, identifier: str, clean: bool) -> aiomqtt.Client:
    password = settings.password.get_secret_value() if settings.password else None
    return aiomqtt.Client(
        settings.host, settings.port, username=settings.username, password=password,
        identifier=identifier, keepalive=settings.keepalive, clean_session=clean,
    )


class ClusterLink:
    """One node's connection to the others (reconnects with back-off by itself)."""

    def __init__(self, settings: MqttSettings, node: str) -> None:
        self.settings = settings
        self.node = node
        self.prefix = settings.topic_prefix
        self._handlers: dict[str, Handler] = {}
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._client: aiomqtt.Client | None = None
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.on_notice: Callable[[dict[str, Any]], None] | None = None
        self.reconnects = 0
        self._notices = Batcher(self, "notices", "notices", qos=0, capacity=NOTICE_BACKLOG)
        self._engine = Batcher(self, "engine", "events", qos=1, capacity=ENGINE_BACKLOG)

    def handle(self, kind: str, handler: Handler) -> None:
        """Answer requests of ``kind`` with ``handler``."""
        self._handlers[kind] = handler

    async def start(self, timeout: float = 10.0) -> None:
        """Connect (and keep reconnecting); wait up to ``timeout`` for the first connection."""
        self._task = asyncio.create_task(self._run(), name="cluster-link")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._connected.wait()
        if not self._connected.is_set():
            log.warning("cluster_link_not_connected", host=self.settings.host,
                        port=self.settings.port)

    async def stop(self) -> None:
        """Disconnect; pending requests fail."""
        await cancel_and_wait(self._task, *self._tasks, *self._notices.tasks,
                              *self._engine.tasks)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(RemoteError("cluster link stopped"))

    @property
    def connected(self) -> bool:
        """Whether the broker connection is up."""
        return self._connected.is_set()

    async def request(self, node: str, kind: str, body: Any, timeout: float) -> Any:
        """Ask ``node`` and wait for its answer; :class:`RemoteError` on error or timeout."""
        request_id = f"{self.node}:{next(self._ids)}"
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        message = {"id": request_id, "from": self.node, "kind": kind, "body": body}
        try:
            async with asyncio.timeout(timeout):
                await self._publish(cluster_topic(self.prefix, "rpc", node), message, qos=1)
                return await future
        except TimeoutError as exc:
            raise RemoteError(f"{kind}: no answer from node {node} in {timeout:g} s") from exc
        finally:
            self._pending.pop(request_id, None)

    def publish_notice(self, notice: dict[str, Any]) -> None:
        """Share a notice with the other nodes (best effort, QoS 0: dropped while the
        broker is away)."""
        self._notices.put(notice)

    def send_engine_input(self, event: dict[str, Any] | orjson.Fragment) -> None:
        """Queue an encoded event (as data, or as JSON in an :class:`orjson.Fragment`) for
        the diagnostics leader (QoS 1, kept by the broker; held here while the broker is
        away, up to :data:`ENGINE_BACKLOG` events)."""
        self._engine.put(event)

    @property
    def engine_backlog(self) -> int:
        """Engine events queued here, not yet acknowledged by the broker."""
        return len(self._engine)

    async def _publish(self, topic: str, message: Any, qos: int) -> None:
        await self._connected.wait()
        client = self._client
        assert client is not None
        await client.publish(topic, orjson.dumps(message), qos=qos)

    async def _run(self) -> None:
        failures = 0
        identifier = f"{self.prefix}-node-{self.node}"
        while True:
            try:
                async with _client(self.settings, identifier, clean=True) as client:
                    self._client = client
                    await client.subscribe(cluster_topic(self.prefix, "rpc", self.node), qos=1)
                    await client.subscribe(cluster_topic(self.prefix, "reply", self.node),
                                           qos=1)
                    await client.subscribe(cluster_topic(self.prefix, "notices"), qos=0)
                    self._connected.set()
                    failures = 0
                    log.info("cluster_link_connected", node=self.node)
                    async for message in client.messages:
                        self._dispatch(str(message.topic), message.payload)
            except aiomqtt.MqttError as exc:
                stop_if_cancelled(exc)
                self._connected.clear()
                self._client = None
                failures += 1
                self.reconnects += 1
                delay = backoff_delay(failures, self.settings.reconnect_initial,
                                      self.settings.reconnect_max)
                log.warning("cluster_link_lost", error=str(exc), retry_in=round(delay, 2))
                await asyncio.sleep(delay)

    def _dispatch(self, topic: str, payload: Any) -> None:
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError:
            log.warning("cluster_message_unreadable", topic=topic)
            return
        if topic.endswith("/notices"):
            if data.get("from") != self.node and self.on_notice is not None:
                notices = data.get("notices")
                for notice in notices if isinstance(notices, list) else [data.get("notice")]:
                    if isinstance(notice, dict):
                        self.on_notice(notice)
        elif "/reply/" in topic:
            future = self._pending.get(data.get("id", ""))
            if future is not None and not future.done():
                if data.get("ok"):
                    future.set_result(data.get("body"))
                else:
                    future.set_exception(RemoteError(str(data.get("error"))))
        else:
            task = asyncio.create_task(self._answer(data))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _answer(self, data: dict[str, Any]) -> None:
        handler = self._handlers.get(data.get("kind", ""))
        reply: dict[str, Any] = {"id": data.get("id")}
        if handler is None:
            reply |= {"ok": False, "error": f"unknown request kind {data.get('kind')!r}"}
        else:
            try:
                reply |= {"ok": True, "body": await handler(data.get("from", ""),
                                                             data.get("body"))}
            except Exception as exc:
                reply |= {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        sender = data.get("from")
        if sender:
            with contextlib.suppress(aiomqtt.MqttError):
                await self._publish(cluster_topic(self.prefix, "reply", sender), reply, qos=1)


ENGINE_BACKLOG = 100_000
"""Most engine events a node holds while the broker is away (the oldest go first)."""
NOTICE_BACKLOG = 10_000
"""Most notices queued for the other nodes (they are dropped while the broker is away)."""
MAX_BATCH = 500
"""Most items in one MQTT message."""
MAX_ORIGINS = 4096
"""Senders (node processes) whose last batch the engine inbox remembers."""


class Batcher:
    """Items for one cluster topic, published in order, many per MQTT message.

    :meth:`put` never waits. One task publishes what is queued (up to :data:`MAX_BATCH`
    items per message) and, while that message is on its way, the next items gather for the
    following one. A QoS 1 batch that fails is published again, unchanged and before anything
    else, once the link is back (at least once, in order), numbered so that the receiver can
    drop a second copy (``origin``, ``seq``); QoS 0 batches are dropped while the broker is
    away. When more than ``capacity`` items wait (besides the batch on its way), the oldest
    are dropped and counted in :attr:`dropped`.
    """

    def __init__(self, link: ClusterLink, topic: str, key: str, *, qos: int,
                 capacity: int) -> None:
        self.link = link
        self.topic = cluster_topic(link.prefix, topic)
        self.key = key
        self.qos = qos
        self.capacity = capacity
        self.origin = f"{link.node}/{secrets.token_hex(4)}"
        """This sender: the node and this process (its numbering starts again at 1)."""
        self.dropped = 0
        self.messages = 0
        """MQTT messages published (each carries one batch)."""
        self._items: deque[Any] = deque()
        self._seq = 0
        self._held: list[Any] | None = None
        """The batch being published, or to publish again (QoS 1), under number ``_seq``."""
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        """Items not yet published (for QoS 1: not yet acknowledged by the broker)."""
        return len(self._items) + (len(self._held) if self._held is not None else 0)

    @property
    def tasks(self) -> tuple[asyncio.Task[None], ...]:
        return (self._task,) if self._task is not None else ()

    def put(self, item: Any) -> None:
        """Queue ``item`` (the oldest is dropped when the queue is full)."""
        self._items.append(item)
        self._trim()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._flush(), name=f"cluster-{self.key}")

    def _trim(self) -> None:
        excess = len(self._items) - self.capacity
        if excess > 0:
            for _ in range(excess):
                self._items.popleft()
            if self.dropped // 1000 != (self.dropped + excess) // 1000 or not self.dropped:
                log.warning("cluster_backlog_full", topic=self.topic, dropped=excess,
                            dropped_total=self.dropped + excess, capacity=self.capacity)
            self.dropped += excess

    async def _flush(self) -> None:
        items = self._items
        while items or self._held is not None:
            if self.qos == 0 and not self.link.connected:
                items.clear()
                self._held = None
                return
            if self._held is None:
                self._held = [items.popleft() for _ in range(min(len(items), MAX_BATCH))]
                self._seq += 1
            message: dict[str, Any] = {"from": self.link.node, self.key: self._held}
            if self.qos:
                message |= {"origin": self.origin, "seq": self._seq}
            try:
                await self.link._publish(self.topic, message, qos=self.qos)
            except aiomqtt.MqttError as exc:
                stop_if_cancelled(exc)
                if self.qos:
                    await asyncio.sleep(0.05)  # _publish waits for the reconnection
                else:
                    self._held = None
                continue
            self._held = None
            self.messages += 1


class EngineInbox:
    """The leader's reader of ``{prefix}/_cluster/engine`` (persistent session)."""

    def __init__(self, settings: MqttSettings, deliver: Callable[[dict[str, Any]], None]) -> None:
        self.settings = settings
        self.deliver = deliver
        self._task: asyncio.Task[None] | None = None
        self.received = 0
        self.duplicates = 0
        """Events dropped because their batch had already come (see the module doc)."""
        self._last_seq: dict[str, int] = {}
        """The last batch number delivered, by origin (the most recent origins last)."""

    async def start(self) -> None:
        """Take over the session and start delivering."""
        self._task = asyncio.create_task(self._run(), name="cluster-engine-inbox")

    async def stop(self) -> None:
        """Stop reading (the broker keeps what follows for the next leader)."""
        if self._task is not None:
            await cancel_and_wait(self._task)

    async def _run(self) -> None:
        failures = 0
        prefix = self.settings.topic_prefix
        while True:
            try:
                async with _client(self.settings, f"{prefix}-engine", clean=False) as client:
                    await client.subscribe(cluster_topic(prefix, "engine"), qos=1)
                    failures = 0
                    async for message in client.messages:
                        try:
                            data = orjson.loads(message.payload)
                        except orjson.JSONDecodeError:
                            continue
                        events = data.get("events") if isinstance(data, dict) else None
                        if isinstance(events, list) and self._seen(data):
                            self.duplicates += len(events)
                            continue
                        for event in events if isinstance(events, list) else [data]:
                            self.received += 1
                            self.deliver(event)
            except aiomqtt.MqttError as exc:
                stop_if_cancelled(exc)
                failures += 1
                delay = backoff_delay(failures, self.settings.reconnect_initial,
                                      self.settings.reconnect_max)
                log.warning("cluster_inbox_lost", error=str(exc), retry_in=round(delay, 2))
                await asyncio.sleep(delay)

    def _seen(self, batch: dict[str, Any]) -> bool:
        """Whether this numbered batch (or a later one of its origin) was delivered already;
        else remember it. Batches without a number (older nodes) are never dropped."""
        origin, seq = batch.get("origin"), batch.get("seq")
        if not isinstance(origin, str) or type(seq) is not int:
            return False
        last = self._last_seq.pop(origin, 0)
        self._last_seq[origin] = max(last, seq)
        if len(self._last_seq) > MAX_ORIGINS:
            del self._last_seq[next(iter(self._last_seq))]
        return seq <= last
