"""A field-service system stand-in: a real HTTP server on loopback that records every webhook
request and answers as told (success, an error status, or no answer until released)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from csms.http.server import HttpServer

Behaviour = int | Literal["hang"]
"""An HTTP status to answer with, or ``"hang"``: answer nothing until released."""


@dataclass(frozen=True, slots=True)
class Received:
    """One request as the receiver saw it."""

    headers: dict[str, str]
    body: bytes
    at: float
    """``time.monotonic()`` at arrival."""
    behaviour: Behaviour

    @property
    def json(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.body)
        return document

    @property
    def delivery(self) -> int:
        return int(self.headers["x-csms-delivery"])

    @property
    def ticket_id(self) -> str:
        return str(self.json["ticket"]["ticket_id"])

    @property
    def ok(self) -> bool:
        return isinstance(self.behaviour, int) and 200 <= self.behaviour < 300


@dataclass
class Receiver:
    """Records requests to ``/hook``; answers from ``plan`` first, then ``default``."""

    plan: list[Behaviour] = field(default_factory=list)
    default: Behaviour = 200
    decide: Callable[[Received], Behaviour | None] | None = None
    """Per-request override (by ticket, for instance); ``None`` falls back to the plan."""
    delay: float = 0.0
    """Seconds to wait before answering (widens race windows in multi-node tests)."""
    requests: list[Received] = field(default_factory=list)
    released: asyncio.Event = field(default_factory=asyncio.Event)
    server: HttpServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"{self.server.url}/hook"

    def delivered(self) -> list[Received]:
        """Requests answered with a 2xx, in arrival order."""
        return [r for r in self.requests if r.ok]

    def for_delivery(self, delivery_id: int) -> list[Received]:
        return [r for r in self.requests if r.delivery == delivery_id]

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        probe = Received(headers, body, time.monotonic(), 200)
        behaviour = self.decide(probe) if self.decide is not None else None
        if behaviour is None:
            behaviour = self.plan.pop(0) if self.plan else self.default
        self.requests.append(Received(headers, body, probe.at, behaviour))
        if self.delay:
            await asyncio.sleep(self.delay)
        if behaviour == "hang":
            await self.released.wait()
            return Response("too late", status_code=200)
        return Response("ok" if behaviour < 400 else "receiver says no", status_code=behaviour)

    async def start(self) -> None:
        app = Starlette(routes=[Route("/hook", self._handle, methods=["POST"])])
        self.server = HttpServer(app, host="127.0.0.1", port=0, timeout_graceful_shutdown=2.0)
        await self.server.start()

    async def stop(self) -> None:
        self.released.set()
        if self.server is not None:
            await self.server.stop()
