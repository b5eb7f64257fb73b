"""The OCPP-J websocket endpoint: ``ws://HOST:PORT/{path_prefix}/{charge_point_id}``.

Before the upgrade (OCPP-J 1.6 §3.1, 2.0.1 Part 4 §3 and A00 security profile 1):
the identity is taken from the percent-decoded last path segment; an unknown charger is
registered or refused with HTTP 404 (setting ``ocpp.unknown_stations``); a charger with a
password must send ``Authorization: Basic`` whose user is its identity, else HTTP 401.
The subprotocol is the first of the client's list that we speak; with none in common the
handshake completes without ``Sec-WebSocket-Protocol`` and the server closes the connection
with a reason (2.0.1 Part 4 §3.2), rather than answering HTTP 400 as websockets would.
"""

from __future__ import annotations

import asyncio
import string
from collections.abc import Callable, Sequence
from datetime import datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import structlog
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from csms.logs import get_logger
from csms.protocol.common import utc_now
from csms.protocol.connection import StationConnection
from csms.protocol.ports import StationBackend
from csms.protocol.registry import SessionRegistry
from csms.protocol.v16 import Station16
from csms.protocol.v201 import Station201
from csms.security.basic_auth import parse_basic_auth
from csms.security.passwords import InvalidHash, verify_password
from csms.settings import OcppSettings
from csms.store import Store
from csms.store.loader import BatchLoader
from diagnostics.events import StationConnected, StationDisconnected

if TYPE_CHECKING:
    from csms.metrics.ocpp import OcppMeter

#: Subprotocols we speak, and the adapter for each (OCPP-J 1.6 §3.2, 2.0.1 Part 4 §3.2).
ADAPTERS: dict[str, type[StationConnection]] = {"ocpp1.6": Station16, "ocpp2.0.1": Station201}
NO_SUBPROTOCOL_CLOSE_CODE = 1002
MAX_IDENTITY_LENGTH = 48
_PRINTABLE = frozenset(string.printable) - frozenset("\t\n\r\x0b\x0c")

log = get_logger("csms.server")


def identity_from_path(path: str, prefix: str) -> str | None:
    """The charger identity in ``{prefix}/{id}``, percent-decoded; ``None`` if not there.

    An identity is 1 to 48 printable characters without ``/`` after decoding (2.0.1 Part 4
    §3.1.1: at most 48 characters; ``:`` is refused because it cannot be a Basic auth user).
    """
    path = path.split("?", 1)[0]
    head = prefix + "/"
    if not path.startswith(head):
        return None
    raw = path[len(head):]
    if not raw or "/" in raw:
        return None
    identity = unquote(raw, errors="strict") if "%" in raw else raw
    if not 0 < len(identity) <= MAX_IDENTITY_LENGTH or ":" in identity or "/" in identity:
        return None
    if not set(identity) <= _PRINTABLE:
        return None
    return identity


def select_subprotocol(
    connection: ServerConnection, subprotocols: Sequence[Subprotocol]
) -> Subprotocol | None:
    """The first protocol in the client's order of preference that we speak, else none."""
    for protocol in subprotocols:
        if protocol in ADAPTERS:
            return protocol
    return None


class OcppServer:
    """Accepts chargers, runs one adapter session each, and records connects/disconnects."""

    def __init__(
        self,
        settings: OcppSettings,
        store: Store,
        registry: SessionRegistry,
        *,
        backend: StationBackend | None = None,
        log_frames: bool = False,
        clock: Callable[[], datetime] = utc_now,
        metrics: OcppMeter | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self._credentials = BatchLoader(store.credentials_of)
        """Password hashes by station, read in bulk during reconnect storms."""
        self.registry = registry
        self.backend: StationBackend = backend or store
        self._log_frames = log_frames
        self._clock = clock
        self._server: Server | None = None
        self.metrics = metrics
        """OCPP traffic counters (set by :mod:`csms.metrics` before :meth:`start`)."""

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        if self._server is None:
            raise RuntimeError("server not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        """Listen on the configured host and port."""
        s = self.settings
        self._server = await serve(
            self._handle,
            s.host,
            s.port,
            select_subprotocol=select_subprotocol,
            process_request=self._process_request,
            compression="deflate" if s.compression else None,
            open_timeout=s.open_timeout,
            ping_interval=s.ping_interval,
            ping_timeout=s.ping_timeout,
            max_size=s.max_message_size,
            backlog=s.backlog,
            reuse_port=s.reuse_port or None,
        )
        log.info("ocpp_listening", url=f"ws://{s.host}:{self.port}{s.path_prefix}/{{id}}")

    async def stop(self) -> None:
        """Close every connection (1001 going away) and stop listening."""
        if self._server is not None:
            self._server.close(close_connections=True)
            await self._server.wait_closed()
            self._server = None

    async def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        """Identity, unknown-station policy and Basic auth, before the upgrade."""
        identity = identity_from_path(request.path, self.settings.path_prefix)
        address = _address(connection)
        if identity is None:
            log.info("handshake_refused", path=request.path[:200], reason="bad path or identity",
                     remote=address)
            if self.metrics is not None:
                self.metrics.connection_refused("bad path or identity")
            return connection.respond(
                HTTPStatus.NOT_FOUND,
                f"Expected {self.settings.path_prefix}/<charge point id> "
                f"(1 to {MAX_IDENTITY_LENGTH} characters, no ':').\n",
            )
        known = await self._credentials.load(identity)
        if known is None and self.settings.unknown_stations == "reject":
            await self._refuse(identity, address, "unknown station")
            return connection.respond(HTTPStatus.NOT_FOUND, "Unknown charge point.\n")
        password_hash = known[0] if known is not None else None
        if password_hash:
            credentials = parse_basic_auth(request.headers.get("Authorization"))
            if credentials is None or credentials[0] != identity:
                reason = "missing Basic auth" if credentials is None else "user is not the id"
                await self._refuse(identity, address, reason)
                return _unauthorized(connection)
            try:
                ok = await asyncio.to_thread(verify_password, credentials[1], password_hash)
            except InvalidHash:
                log.error("password_hash_invalid", charger_id=identity)
                ok = False
            if not ok:
                await self._refuse(identity, address, "wrong password")
                return _unauthorized(connection)
        return None

    async def _refuse(self, identity: str, address: str | None, reason: str) -> None:
        log.warning("handshake_refused", charger_id=identity, reason=reason, remote=address)
        if self.metrics is not None:
            self.metrics.connection_refused(reason)
        await self.store.record_refused(identity, self._clock(), reason, address)

    async def _handle(self, connection: ServerConnection) -> None:
        """One charger session, from the upgrade to the close."""
        identity = identity_from_path(connection.request.path if connection.request else "",
                                      self.settings.path_prefix)
        assert identity is not None  # _process_request refused every other path
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(charger_id=identity)
        protocol = connection.subprotocol
        if protocol is None:
            offered = connection.request.headers.get_all("Sec-WebSocket-Protocol") \
                if connection.request else []
            reason = f"no common OCPP subprotocol; we speak {', '.join(ADAPTERS)}"
            log.warning("subprotocol_refused", offered=offered)
            await self._refuse(identity, _address(connection), reason)
            await connection.close(NO_SUBPROTOCOL_CLOSE_CODE, reason)
            return
        adapter = ADAPTERS[protocol]
        station = adapter(
            identity,
            connection,
            self.backend,
            call_timeout=self.settings.call_timeout,
            heartbeat_interval=self.settings.heartbeat_interval,
            log_frames=self._log_frames,
            metrics=self.metrics,
        )
        session = await self.registry.register(station)
        version = station.version
        log.info("station_connected", protocol=version, remote=_address(connection))
        try:
            await self.backend.record(
                StationConnected(station_id=identity, at=self._clock(), protocol=version,
                                 remote_address=_address(connection))
            )
            await station.start()
        finally:
            current = self.registry.unregister(session)
            reason = _close_reason(connection)
            log.info("station_disconnected", reason=reason, replaced=not current)
            try:
                await asyncio.shield(
                    self.backend.record(
                        StationDisconnected(station_id=identity, at=self._clock(), reason=reason)
                    )
                )
            finally:
                session.finished.set()


def _unauthorized(connection: ServerConnection) -> Response:
    response = connection.respond(HTTPStatus.UNAUTHORIZED, "Basic authentication required.\n")
    response.headers["WWW-Authenticate"] = 'Basic realm="OCPP", charset="UTF-8"'
    return response


def _address(connection: ServerConnection) -> str | None:
    remote: Any = connection.remote_address
    if isinstance(remote, tuple) and remote:
        return f"{remote[0]}:{remote[1]}"
    return None


def _close_reason(connection: ServerConnection) -> str:
    code = connection.close_code
    reason = connection.close_reason or ""
    if code is None:
        return "connection lost"
    return f"{code} {reason}".strip()

