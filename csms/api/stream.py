"""``GET /api/v1/stream``: the operations events as Server-Sent Events (viewer role).

Every notice published on the bus after the stream opened is sent as::

    event: <topic>.<kind>
    data: <the notice's to_dict() as one line of JSON>

The first event is ``ready`` (``data: {"topics": [...]}``): from then on nothing is missed.
A comment line (``: heartbeat``) is sent every :data:`HEARTBEAT_SECONDS` so that proxies and
clients notice a dead connection. ``?topics=station,run,ticket`` keeps only those topics.

Each client has its own bounded queue, filled by a synchronous bus subscriber with
``put_nowait`` (the bus is never blocked): when a slow client falls :data:`QUEUE_SIZE` events
behind, its oldest events are dropped and the next frame it gets is ``event: overflow`` with
``data: {"dropped": n}`` (a dashboard re-reads everything then). A closed connection
unsubscribes its queue; :meth:`StreamHub.stop` ends every stream (the central system stops it
before the HTTP server, so that open dashboards do not hold up the shutdown).

The token goes in the ``Authorization`` header (never in the URL), so browsers read the stream
with ``fetch()`` rather than ``EventSource``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi.responses import StreamingResponse

from csms.api.auth import Authenticator, Principal
from csms.api.context import ApiContext
from csms.api.tokens import Role
from csms.bus import EventBus, Notice, Topic
from csms.logs import get_logger

if TYPE_CHECKING:
    from csms.app import CentralSystem
    from csms.components import Component

log = get_logger("csms.api.stream")

QUEUE_SIZE = 1000
"""Events kept per client before its oldest are dropped."""
HEARTBEAT_SECONDS = 15.0
MAX_CLIENTS = 200
"""Open streams per central system; more get a 503."""
EXTRAS_KEY = "stream"
"""Where the hub is kept in :attr:`ApiContext.extras`."""


def sse_frame(event: str, data: object) -> bytes:
    """One Server-Sent Event: ``event:`` line, one ``data:`` line of JSON, blank line."""
    name = event.replace("\r", " ").replace("\n", " ")
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=str)
    return f"event: {name}\ndata: {payload}\n\n".encode()


class StreamClient:
    """One open stream: a bounded queue of notices on the topics it asked for."""

    def __init__(self, topics: frozenset[Topic] | None, size: int) -> None:
        self.topics = topics
        self.queue: asyncio.Queue[Notice | None] = asyncio.Queue(maxsize=size)
        self.dropped = 0
        """Notices dropped since the last ``overflow`` frame."""
        self.closing = False
        self.unsubscribe: Callable[[], None] = lambda: None

    def offer(self, notice: Notice) -> None:
        """The bus subscriber: queue ``notice``, dropping the oldest when full (never waits)."""
        if self.closing or (self.topics is not None and notice.topic not in self.topics):
            return
        self._put(notice)

    def close(self) -> None:
        """End the stream after what is queued (``None`` marks the end)."""
        if not self.closing:
            self.closing = True
            self._put(None)

    def _put(self, item: Notice | None) -> None:
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(item)


class StreamHub:
    """The open streams of one central system (a :class:`~csms.components.Component`)."""

    def __init__(
        self,
        bus: EventBus,
        *,
        queue_size: int = QUEUE_SIZE,
        heartbeat: float = HEARTBEAT_SECONDS,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        self.bus = bus
        self.queue_size = queue_size
        self.heartbeat = heartbeat
        self.max_clients = max_clients
        self.clients: set[StreamClient] = set()
        self.closed = False

    def open(self, topics: frozenset[Topic] | None) -> StreamClient:
        """A new client, subscribed to the bus."""
        client = StreamClient(topics, self.queue_size)
        client.unsubscribe = self.bus.subscribe(client.offer)
        self.clients.add(client)
        return client

    def release(self, client: StreamClient) -> None:
        """Unsubscribe ``client`` (its connection is gone or its stream ended)."""
        client.unsubscribe()
        if client in self.clients:
            self.clients.discard(client)
            log.info("stream_closed", clients=len(self.clients))

    async def events(self, topics: frozenset[Topic] | None) -> AsyncIterator[bytes]:
        """The bytes of one stream: ``ready``, then notices, overflow hints, heartbeats.

        The client subscribes when the stream starts and unsubscribes when it ends (or its
        connection is gone: the generator is cancelled or closed)."""
        client = self.open(topics)
        try:
            names = sorted(t.value for t in topics) if topics else [t.value for t in Topic]
            yield sse_frame("ready", {"topics": names})
            while True:
                try:
                    async with asyncio.timeout(self.heartbeat):
                        item = await client.queue.get()
                except TimeoutError:
                    yield b": heartbeat\n\n"
                    continue
                chunk = bytearray()
                while True:
                    if client.dropped:
                        chunk += sse_frame("overflow", {"dropped": client.dropped})
                        client.dropped = 0
                    if item is None:
                        if chunk:
                            yield bytes(chunk)
                        return
                    chunk += sse_frame(f"{item.topic.value}.{item.kind}", item.to_dict())
                    if client.queue.empty() or len(chunk) > 64 * 1024:
                        break
                    item = client.queue.get_nowait()
                yield bytes(chunk)
        finally:
            self.release(client)

    async def start(self) -> None:
        """Nothing to start: streams open with their requests."""

    async def stop(self) -> None:
        """End every open stream and refuse new ones (503)."""
        self.closed = True
        for client in tuple(self.clients):
            client.close()


def hub_of(ctx: ApiContext) -> StreamHub:
    """The hub kept in ``ctx.extras`` (created on first use)."""
    hub = ctx.extras.get(EXTRAS_KEY)
    if not isinstance(hub, StreamHub):
        hub = StreamHub(ctx.bus)
        ctx.extras[EXTRAS_KEY] = hub
    return hub


def install(central: CentralSystem) -> Component:
    """The hub as a component of ``central``, so that stopping it ends the open streams
    before the HTTP server waits for its connections."""
    return hub_of(central.api)


def parse_topics(value: str | None) -> frozenset[Topic] | None:
    """``"station,run"`` -> those topics; ``None`` / empty -> every topic; else a 422."""
    if value is None or not value.strip():
        return None
    names = [name.strip().lower() for name in value.split(",") if name.strip()]
    known = {t.value for t in Topic}
    unknown = sorted(set(names) - known)
    if unknown:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"unknown topics {unknown}; known: {sorted(known)}",
        )
    return frozenset(Topic(name) for name in names)


def router(ctx: ApiContext, auth: Authenticator) -> APIRouter:
    """The stream endpoints under ``/api/v1``."""
    api = APIRouter(tags=["stream"])
    hub = hub_of(ctx)
    viewer = Depends(auth.require(Role.VIEWER))

    @api.get(
        "/stream",
        summary="Live operations events (Server-Sent Events)",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}},
                         "description": "`event: <topic>.<kind>` + `data: <notice JSON>`"}},
    )
    async def stream(
        topics: Annotated[str | None, Query(
            description="Comma-separated topics to keep (station, fault, run, command, "
                        "ticket, report, log); all when absent",
            examples=["station,run,ticket"],
        )] = None,
        principal: Principal = viewer,
    ) -> StreamingResponse:
        wanted = parse_topics(topics)
        if hub.closed:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail="shutting down")
        if len(hub.clients) >= hub.max_clients:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                                detail="too many open streams", headers={"Retry-After": "10"})
        log.info("stream_opened", token_id=principal.token_id, clients=len(hub.clients) + 1,
                 topics=sorted(t.value for t in wanted) if wanted else None)
        return StreamingResponse(
            hub.events(wanted),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"},
        )

    return api
