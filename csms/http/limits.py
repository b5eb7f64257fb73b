"""Request limits of the HTTP side: rate per client address and body size, on ``/api`` and
``/uploads`` (settings group ``[limits]``).

- ``/api/...``: ``limits.api_requests_per_minute`` requests per client address, else 429 with
  ``Retry-After``; a body larger than ``limits.api_max_body_bytes`` (the driver report intake:
  its photos on top) gets 413, from the declared ``Content-Length`` before the app runs,
  else as soon as the streamed body passes the limit (the app then sees a disconnect and its
  answer is replaced by the 413); up to :data:`DRAIN_BYTES` of the refused body are read and
  dropped first, so that the client gets the answer rather than a reset connection; a path or
  query string with a NUL character gets 400 (no database column takes one).
- ``PUT``/``POST`` ``/uploads/...``: ``limits.uploads_per_minute`` per client address, else
  429. Their size limit stays the endpoint's own (``uploads.max_bytes``, 413 with the partial
  file removed).

Every refusal is logged (``http_request_refused``) and counted in
``csms_limit_refusals_total{limit}``, the 413 and 429 answers of the endpoints themselves too
(upload size, report intake rate); upload requests refused for their credentials (unknown or
used token) are counted by the upload service (``upload_token``). The client address is the
peer of the TCP connection (no proxy headers are trusted); ``limits.exempt_networks`` are not
limited by address. Upload and tracking tokens in paths are never logged.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from time import monotonic
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from csms.logs import get_logger
from csms.metrics.limits import LimitMeter
from csms.security.limits import Exemptions, KeyedBuckets, per_minute, retry_after
from csms.settings import Settings

log = get_logger("csms.http.limits")

API_PREFIX = "/api/"
UPLOADS_PREFIX = "/uploads/"
REPORT_INTAKE = "/api/v1/reports"
"""``POST``: driver reports with photos, whose body limit adds the photos' (``[api]``)."""
_TRACKING = "/reports/track/"
_UPLOAD_METHODS = frozenset({"PUT", "POST"})

DRAIN_BYTES = 1024 * 1024
"""Bytes of a refused body still read (and dropped) before the 413, so that a client that
sends its whole body before reading the answer gets it; past that the connection is closed."""

MeterLookup = Callable[[], LimitMeter | None]


class RequestLimits:
    """ASGI middleware enforcing the ``[limits]`` of ``/api`` and ``/uploads``."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Settings,
        meter: MeterLookup = lambda: None,
        clock: Callable[[], float] = monotonic,
    ) -> None:
        self.app = app
        limits = settings.limits
        self.api_rate: KeyedBuckets | None = per_minute(limits.api_requests_per_minute)
        self.upload_rate: KeyedBuckets | None = per_minute(limits.uploads_per_minute)
        self.api_max_body = limits.api_max_body_bytes
        photos = settings.api.report_max_photos * settings.api.report_max_photo_bytes
        self.report_max_body = limits.api_max_body_bytes + photos
        self.exempt = Exemptions(limits.exempt_networks)
        self._meter = meter
        self._clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith(API_PREFIX):
            await self._api(scope, receive, send, path)
        elif path.startswith(UPLOADS_PREFIX) and scope["method"] in _UPLOAD_METHODS:
            await self._upload(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _api(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        if await self._over_rate(self.api_rate, "api_rate", scope, send):
            return
        if "\x00" in path or b"%00" in scope.get("query_string", b""):
            # No database takes NUL in text: refused here rather than failing in a query.
            await _answer(send, 400, {"detail": "NUL character in the path or query string"},
                          {})
            return
        limit = (self.report_max_body if path == REPORT_INTAKE and scope["method"] == "POST"
                 else self.api_max_body)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            if declared - limit <= DRAIN_BYTES:
                await _drain(receive, declared)
            await self._too_large(scope, send, limit)
            return
        guard = _BodyGuard(limit)

        async def guarded_receive() -> Message:
            if guard.over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                guard.size += len(message.get("body", b""))
                if guard.size > limit:
                    guard.over = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if guard.over:
                return  # the app's answer to the cut body is replaced by the 413
            if message["type"] == "http.response.start":
                guard.started = True
                self._observe(message["status"], "api", scope)
            await send(message)

        try:
            await self.app(scope, guarded_receive, guarded_send)
        except Exception:
            if not guard.over:
                raise
        if guard.over and not guard.started:
            await _drain(receive, DRAIN_BYTES)
            await self._too_large(scope, send, limit)

    async def _upload(self, scope: Scope, receive: Receive, send: Send) -> None:
        if await self._over_rate(self.upload_rate, "upload_rate", scope, send):
            return

        async def observed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self._observe(message["status"], "upload", scope)
            await send(message)

        await self.app(scope, receive, observed_send)

    async def _over_rate(
        self, buckets: KeyedBuckets | None, limit: str, scope: Scope, send: Send
    ) -> bool:
        """Count the request against its client's bucket; answer 429 when over."""
        host = _host(scope)
        if buckets is None or host is None or host in self.exempt:
            return False
        wait = buckets.hit(host, self._clock())
        if not wait:
            return False
        seconds = retry_after(wait)
        self._refused(limit, scope, status=429, retry_after=seconds)
        await _answer(send, 429, {
            "detail": f"too many requests from this address; retry in {seconds} s",
            "limit": limit,
        }, {"retry-after": str(seconds)})
        return True

    async def _too_large(self, scope: Scope, send: Send, limit: int) -> None:
        self._refused("api_body_size", scope, status=413, max_bytes=limit)
        await _answer(send, 413, {
            "detail": f"request body larger than {limit} bytes", "limit": "api_body_size",
        }, {"connection": "close"})

    def _observe(self, status: int, kind: str, scope: Scope) -> None:
        """Count the endpoints' own size and rate refusals as well."""
        if status == 413:
            self._refused(f"{kind}_body_size", scope, status=status, source="endpoint")
        elif status == 429:
            self._refused(f"{kind}_rate", scope, status=status, source="endpoint")

    def _refused(self, limit: str, scope: Scope, **details: Any) -> None:
        meter = self._meter()
        if meter is not None:
            meter.refused(limit)
        log.warning("http_request_refused", limit=limit, client=_host(scope),
                    method=scope.get("method"), path=_loggable(scope["path"]), **details)


class _BodyGuard:
    __slots__ = ("limit", "over", "size", "started")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self.over = False
        self.started = False


async def _drain(receive: Receive, budget: int) -> None:
    """Read and drop the rest of a request body, at most about ``budget`` bytes."""
    while budget > 0:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return
        budget -= len(message.get("body", b""))


def _host(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def _loggable(path: str) -> str:
    """The path without the credentials some paths carry (upload and tracking tokens)."""
    if path.startswith(UPLOADS_PREFIX):
        return UPLOADS_PREFIX + "<token>"
    head, found, _ = path.partition(_TRACKING)
    if found:
        return head + _TRACKING + "<token>"
    return path[:200]


async def _answer(send: Send, status: int, body: dict[str, str], headers: dict[str, str]) -> None:
    payload = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(name.encode(), value.encode()) for name, value in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})
