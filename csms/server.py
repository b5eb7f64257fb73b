"""The OCPP-J websocket endpoint: ``ws://HOST:PORT/{path_prefix}/{charge_point_id}``.

Before the upgrade (OCPP-J 1.6 §3.1, 2.0.1 Part 4 §3 and A00 security profile 1):
the identity is taken from the percent-decoded last path segment; an unknown charger is
registered or refused with HTTP 404 (setting ``ocpp.unknown_stations``); a charger with a
password must send ``Authorization: Basic`` whose user is its identity, else HTTP 401.
The subprotocol is the first of the client's list that we speak; with none in common the
handshake completes without ``Sec-WebSocket-Protocol`` and the server closes the connection
with a reason (2.0.1 Part 4 §3.2), rather than answering HTTP 400 as websockets would.
Security profiles 2 and 3 (``wss://``, client certificates, per station) are enforced by
:class:`csms.security.guard.ProfileGuard` before Basic auth; a charger below its profile gets
HTTP 403.
"""

from __future__ import annotations

import asyncio
import ssl
import string
from collections.abc import Callable, Sequence
from datetime import datetime
from http import HTTPStatus
from time import monotonic
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
from csms.security.guard import ProfileGuard
from csms.security.limits import Exemptions, MessageRateLimit, per_minute, retry_after
from csms.security.passwords import InvalidHash, verify_password
from csms.security.profiles import Refuse
from csms.security.tls import ocpp_context
from csms.settings import LimitsSettings, OcppSettings
from csms.store import Store
from csms.store.loader import BatchLoader
from diagnostics.events import StationConnected, StationDisconnected

if TYPE_CHECKING:
    from csms.metrics.ocpp import OcppMeter

#: Subprotocols we speak, and the adapter for each (OCPP-J 1.6 §3.2, 2.0.1 Part 4 §3.2).
ADAPTERS: dict[str, type[StationConnection]] = {"ocpp1.6": Station16, "ocpp2.0.1": Station201}
NO_SUBPROTOCOL_CLOSE_CODE = 1002
#: First and longest pause between two attempts at storing a disconnect (database away).
DISCONNECT_RETRY_INITIAL = 0.1
DISCONNECT_RETRY_MAX = 2.0
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
        limits: LimitsSettings | None = None,
    ) -> None:
        self.settings = settings
        self.limits = limits or LimitsSettings()
        """Abuse limits: handshakes per address, messages per connection (``[limits]``)."""
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
        self.security = ProfileGuard(store.security_profiles_of, settings.default_security_profile)
        """Security profiles per station (TLS, client certificates)."""
        self._tls_server: Server | None = None
        """The ``wss://`` listener on ``ocpp.tls_port``, when there is one."""
        self._stopping = False
        """Set by :meth:`stop`: disconnects are no longer retried."""

    @property
    def port(self) -> int:
        """The bound port (useful with port 0); RuntimeError when not listening (yet or any
        more: the sockets are gone once :meth:`stop` began)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("server not listening")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def tls_port(self) -> int | None:
        """The bound ``wss://`` port: the ``tls_port`` listener's, else :attr:`port` when it
        serves TLS, else ``None``."""
        if self._tls_server is not None:
            if not self._tls_server.sockets:
                raise RuntimeError("server not listening")
            port: int = self._tls_server.sockets[0].getsockname()[1]
            return port
        return self.port if self.settings.tls else None

    async def start(self) -> None:
        """Listen on the configured host and port: ``wss://`` with ``ocpp.tls_cert``, or
        ``ws://`` there and ``wss://`` on ``ocpp.tls_port`` when that is set too."""
        s = self.settings
        self._stopping = False
        tls = ocpp_context(s)
        separate = tls is not None and s.tls_port is not None
        self._server = await self._listen(s.port, None if separate else tls)
        scheme = "wss" if tls is not None and not separate else "ws"
        log.info("ocpp_listening", url=f"{scheme}://{s.host}:{self.port}{s.path_prefix}/{{id}}")
        if separate and s.tls_port is not None:
            try:
                self._tls_server = await self._listen(s.tls_port, tls)
            except BaseException:
                await self.stop()
                raise
            log.info("ocpp_listening",
                     url=f"wss://{s.host}:{self.tls_port}{s.path_prefix}/{{id}}")

    async def _listen(self, port: int, tls: ssl.SSLContext | None) -> Server:
        s = self.settings
        return await serve(
            self._handle,
            s.host,
            port,
            select_subprotocol=select_subprotocol,
            process_request=self._process_request,
            compression="deflate" if s.compression else None,
            open_timeout=s.open_timeout,
            ping_interval=s.ping_interval,
            ping_timeout=s.ping_timeout,
            max_size=s.max_message_size,
            backlog=s.backlog,
            reuse_port=s.reuse_port or None,
            ssl=tls,
        )

    async def stop(self) -> None:
        """Close every connection (1001 going away) and stop listening."""
        self._stopping = True
        for server in (self._tls_server, self._server):
            if server is not None:
                server.close(close_connections=True)
        for server in (self._tls_server, self._server):
            if server is not None:
                await server.wait_closed()
        self._server = self._tls_server = None

    async def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        """Identity, unknown-station policy and Basic auth, before the upgrade."""
        over_rate = self._over_handshake_rate(connection)  # limits: first, before any work
        if over_rate is not None:
            return over_rate
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
        # --- security profiles 2 and 3 (csms/security/guard.py): TLS, client certificate ---
        verdict = await self.security.check(connection.transport, identity,
                                            has_password=bool(password_hash))
        if isinstance(verdict, Refuse):
            await self._refuse(identity, address, verdict.reason)
            return connection.respond(verdict.status, f"{verdict.reason}\n")
        # --- end of security profiles
        if password_hash and verdict.basic_auth:
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

    @property
    def limits(self) -> LimitsSettings:
        """The ``[limits]`` settings in force (assigning them resets the per-address counts)."""
        return self._limits

    @limits.setter
    def limits(self, limits: LimitsSettings) -> None:
        self._limits = limits
        self._handshakes = per_minute(limits.handshakes_per_minute)
        self._exempt = Exemptions(limits.exempt_networks)
        self._message_limit = MessageRateLimit.of(limits)

    def _over_handshake_rate(self, connection: ServerConnection) -> Response | None:
        """``limits.handshakes_per_minute`` per client address: over it HTTP 429 with
        ``Retry-After``, logged and counted (nothing is read from the database)."""
        handshakes = self._handshakes
        remote: Any = connection.remote_address
        if handshakes is None or not isinstance(remote, tuple) or not remote:
            return None
        host = str(remote[0])
        if host in self._exempt:
            return None
        wait = handshakes.hit(host, monotonic())
        if not wait:
            return None
        seconds = retry_after(wait)
        log.warning("handshake_refused", reason="handshake rate limit", remote=_address(connection),
                    retry_after=seconds, limit_per_minute=self._limits.handshakes_per_minute)
        if self.metrics is not None:
            self.metrics.connection_refused("handshake rate limit")
            self.metrics.limits.refused("ocpp_handshake_rate")
        response = connection.respond(
            HTTPStatus.TOO_MANY_REQUESTS,
            f"Too many connection attempts from this address; retry in {seconds} s.\n",
        )
        response.headers["Retry-After"] = str(seconds)
        return response

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
            rate_limit=self._message_limit,
        )
        session = await self.registry.register(station)
        version = station.version
        log.info("station_connected", protocol=version, remote=_address(connection))
        recorded = False
        try:
            await self.backend.record(
                StationConnected(station_id=identity, at=self._clock(), protocol=version,
                                 remote_address=_address(connection))
            )
            recorded = True
            await station.start()
        finally:
            reason = _close_reason(connection)
            log.info("station_disconnected", reason=reason,
                     replaced=self.registry.get(identity) is not station)
            try:
                # Stored before the session leaves the registry: a reconnect waits for it
                # (SessionRegistry.register), so this "disconnected" never lands after the
                # next "connected", even when it had to wait for the database.
                await asyncio.shield(self._record_disconnect(
                    StationDisconnected(station_id=identity, at=self._clock(), reason=reason),
                    retry=recorded,
                ))
            finally:
                self.registry.unregister(session)
                session.finished.set()

    async def _record_disconnect(self, event: StationDisconnected, *, retry: bool) -> None:
        """Store a disconnect; with ``retry`` (its connect was stored), again and again while
        the database is away, until the server stops.

        No charger sends it again: lost, the station would stay "connected" in the database
        and the diagnostics would never learn that it is offline. A server stopping gives up
        (its next start marks its stations disconnected).
        """
        pause = DISCONNECT_RETRY_INITIAL
        while True:
            try:
                await self.backend.record(event)
                return
            except Exception as exc:
                if not retry or self._stopping:
                    raise
                log.warning("disconnect_not_recorded", retry_in=pause, error=repr(exc)[:200])
            await asyncio.sleep(pause)
            pause = min(pause * 2, DISCONNECT_RETRY_MAX)


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

