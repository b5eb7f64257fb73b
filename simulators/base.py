"""Shared machinery of the simulated charging stations (OCPP-J 1.6 and 2.0.1 Part 4).

:class:`StationBase` owns everything that does not depend on the OCPP version:

* the WebSocket client side (OCPP-J 1.6 §3, 2.0.1 Part 4 §3): URL ``<endpoint>/<percent-encoded
  id>``, subprotocol offer, HTTP Basic auth (security profile 1/2), ``wss://`` with a CA file
  and a client certificate (security profiles 2/3, :mod:`simulators.tls`), reconnect after
  ``reconnect_delay`` with capped back-off; a refused handshake or failed TLS handshake is
  described in ``last_refusal`` / ``connect_problem`` and in :class:`BootTimeout`;
* RPC framing (OCPP-J §4): CALL / CALLRESULT / CALLERROR, one outstanding CALL at a time from the
  station, incoming CALLs handled concurrently so the station can send notifications while a
  request is still unanswered;
* lifecycle: BootNotification with retry while Pending/Rejected (1.6 §4.2, 2.0.1 B01-B03),
  StatusNotification per connector, Heartbeat loop (1.6 §4.6, 2.0.1 G02);
* :class:`~simulators.behaviour.Behaviour` (answer modes, delays, diagnostics quirks) and the
  recording used by tests (``received``, ``sent``, ``frames``);
* the version-independent commands: Reset flow, GetLog / upload flow, ClearCache, DataTransfer;
* the hooks of an applied :class:`~simulators.scenarios.Scenario` (heal on unlock / availability
  / reset, timers after boot, upload protocol, generated log text).

Version subclasses (:mod:`simulators.station16`, :mod:`simulators.station201`) provide payloads
and the remaining command handlers.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import ssl
import uuid
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Literal, Self, TypeVar, cast
from urllib.parse import quote, urlsplit

from ocpp.charge_point import remove_nones, serialize_as_dict, snake_to_camel_case
from ocpp.exceptions import OCPPError
from ocpp.messages import Call, CallError, CallResult, unpack, validate_payload
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidMessage,
    InvalidStatus,
)

from simulators.behaviour import Behaviour, Mode
from simulators.config import utc_now_iso
from simulators.scenarios import Scenario, ScenarioRun, get_scenario
from simulators.tls import TlsOptions
from simulators.upload import Uploader, default_uploader, upload_target

log = logging.getLogger("simulators")

JSON = dict[str, Any]
FollowUp = Callable[[], Awaitable[None]]
ProblemListener = Callable[["StationBase", str], None]
"""Told ``(station, description)`` of every failed connection attempt."""

MAX_BACKOFF = 30.0
"""Upper bound of the reconnect back-off after failed connection attempts (seconds)."""


# --------------------------------------------------------------------------------------------
# Errors and records
# --------------------------------------------------------------------------------------------


class StationError(Exception):
    """Base class of simulator errors."""


class NotConnectedError(StationError, ConnectionError):
    """The station has no open WebSocket (offline, rebooting, stopped)."""


class CallErrorResponse(StationError):
    """The CSMS answered a CALL of the station with a CALLERROR (OCPP-J 1.6 §4.2.3)."""

    def __init__(self, action: str, code: str, description: str, details: Any) -> None:
        super().__init__(f"{action}: CALLERROR {code}: {description}")
        self.action = action
        self.code = code
        self.description = description
        self.details = details


class BootTimeout(StationError, TimeoutError):
    """``start()`` / ``come_online()`` did not see an accepted boot in time."""


class SessionRejected(StationError):
    """Authorize / StartTransaction / TransactionEvent answered with a non-Accepted id token."""

    def __init__(self, status: str) -> None:
        super().__init__(f"id token not accepted: {status}")
        self.status = status


def _now() -> datetime:
    return datetime.now(UTC)


def describe_connect_error(exc: BaseException, *, tls: bool = False) -> str:
    """One line on why a connection attempt failed: the CSMS's refusal (HTTP status and the
    first line of its body), a TLS failure, or the network error; ``tls``: over ``wss://``."""
    if isinstance(exc, InvalidStatus):
        response = exc.response
        text = f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
        body = response.body.decode("utf-8", "replace").strip() if response.body else ""
        line = body.splitlines()[0][:200] if body else ""
        return f"{text}: {line}" if line else text
    cause: BaseException | None = exc
    for _ in range(5):  # the TLS error may be the cause of a websockets error
        if cause is None or isinstance(cause, ssl.SSLError):
            break
        cause = cause.__cause__ or cause.__context__
    if isinstance(cause, ssl.SSLCertVerificationError):
        return f"TLS: server certificate not accepted: {cause.verify_message or cause.reason}"
    if isinstance(cause, ssl.SSLError):
        hint = " (is the endpoint plain ws://?)" if cause.reason == "WRONG_VERSION_NUMBER" else ""
        return f"TLS handshake failed: {cause.reason or cause}{hint}"
    if isinstance(exc, InvalidMessage):
        if tls:  # TLS 1.3: a refused client certificate shows after the client's handshake
            return ("connection closed without an HTTP answer: the CSMS may have refused the "
                    "client certificate (not issued by a CA it trusts?)")
        return ("connection closed without an HTTP answer: is the endpoint TLS only "
                "(connect with wss://)?")
    if isinstance(exc, ConnectionResetError) and tls:
        return "connection reset during the TLS handshake: is the endpoint plain ws://?"
    if isinstance(exc, TimeoutError):
        return "timed out opening the connection"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _iso(moment: datetime) -> str:
    """Log timestamp: UTC, milliseconds, ``Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class ReceivedCommand:
    """A CALL the CSMS sent to the station, with what the station answered."""

    action: str
    payload: JSON
    timestamp: datetime
    unique_id: str
    response: JSON | None = None
    """CALLRESULT payload the station sent (None: not answered yet, never, or CALLERROR)."""
    error_code: str | None = None
    """CALLERROR code the station sent, if any."""
    seq: int = 0
    """Position in the station's record order (shared by ``received`` and ``sent``)."""


@dataclass
class SentMessage:
    """A CALL the station sent, with the CSMS's answer once it arrived."""

    action: str
    payload: JSON
    timestamp: datetime
    unique_id: str
    response: JSON | None = None
    error_code: str | None = None
    seq: int = 0
    """Position in the station's record order (shared by ``received`` and ``sent``)."""


@dataclass
class Frame:
    """One raw WebSocket text frame, for ordering checks in tests."""

    direction: Literal["in", "out"]
    text: str
    timestamp: datetime


@dataclass
class Session:
    """An ongoing charging session on one connector (1.6) / EVSE (2.0.1)."""

    connector: int
    id_tag: str
    transaction_id: int | str
    meter_start_wh: float
    energy_wh: float
    started_at: datetime = field(default_factory=_now)
    seq_no: int = 0
    """2.0.1 TransactionEvent seqNo of the next event (E01: starts at 0, +1 per event)."""
    remote_start_id: int | None = None


@dataclass
class Reply:
    """What a command handler answers: the CALLRESULT payload and optional follow-ups.

    ``first`` is the first follow-up message (sent before the CALLRESULT when
    ``Behaviour.notify_before_result``), ``rest`` always runs after the CALLRESULT.
    """

    payload: JSON
    first: FollowUp | None = None
    rest: FollowUp | None = None


Handler = Callable[[JSON, Mode], Awaitable[Reply | None]]
R = TypeVar("R", ReceivedCommand, SentMessage)


# --------------------------------------------------------------------------------------------
# The station
# --------------------------------------------------------------------------------------------


class StationBase(ABC):
    """Version-independent simulated charging station (see module docstring)."""

    ocpp_version: ClassVar[str]
    """``"1.6"`` or ``"2.0.1"`` (schema set used for validation)."""
    default_subprotocol: ClassVar[str]
    known_actions: ClassVar[frozenset[str]]
    """Actions defined by the version: unknown ones get CALLERROR NotImplemented."""

    boot_retry_interval: float = 5.0
    """Retry delay after a boot without usable interval (interval 0, CALLERROR, no answer)."""
    max_records: int = 10_000
    """Bound of ``received``, ``sent`` and ``frames`` (oldest dropped first)."""

    def __init__(
        self,
        station_id: str,
        url: str,
        *,
        connectors: int = 2,
        password: str | None = None,
        behaviour: Behaviour | None = None,
        vendor: str = "SimVendor",
        model: str = "SimModel",
        serial: str | None = None,
        firmware: str = "1.0.0-sim",
        heartbeat_interval: float | None = None,
        reconnect_delay: float = 0.2,
        subprotocols: list[str] | None = None,
        uploader: Uploader | None = None,
        response_timeout: float = 10.0,
        open_timeout: float = 10.0,
        boot_on_reconnect: bool = False,
        max_connect_attempts: int | None = None,
        ping_interval: float | None = None,
        scenario: Scenario | str | None = None,
        ca_file: str | Path | None = None,
        cert_file: str | Path | None = None,
        key_file: str | Path | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if connectors < 1:
            raise ValueError("connectors must be >= 1")
        self.station_id = station_id
        self.url = url
        self.connectors = connectors
        self.password = password
        self.tls = TlsOptions(
            Path(ca_file) if ca_file is not None else None,
            str(cert_file) if cert_file is not None else None,
            str(key_file) if key_file is not None else None,
        )
        """CA file and client certificate for ``wss://`` and HTTPS uploads (``{id}`` in the
        certificate paths is this station's id)."""
        self._ssl_context = ssl_context
        """Given (shared by a fleet) or built from ``tls``; lazily for the system store."""
        if ssl_context is None and (self.tls.ca_file or self.tls.client_certificate):
            self._ssl_context = self.tls.context(station_id)  # bad files: fail now
        self.behaviour = behaviour if behaviour is not None else Behaviour()
        self.vendor = vendor
        self.model = model
        self.serial = serial if serial is not None else f"SN-{station_id}"[:25]
        self.firmware = firmware
        self.reconnect_delay = reconnect_delay
        self.subprotocols: list[str] = (
            list(subprotocols) if subprotocols is not None else [self.default_subprotocol]
        )
        self.uploader: Uploader = uploader if uploader is not None else self._default_upload
        self.response_timeout = response_timeout
        self.open_timeout = open_timeout
        self.boot_on_reconnect = boot_on_reconnect
        self.max_connect_attempts = max_connect_attempts
        self.ping_interval = ping_interval

        # Observable state.
        self.booted = asyncio.Event()
        """Set once the station is operational on the current connection (boot Accepted and
        initial StatusNotifications sent, or reconnected without reboot); cleared on
        disconnect."""
        self.boot_count = 0
        """Number of accepted BootNotifications."""
        self.boot_status: str | None = None
        """Status of the last BootNotification answer (Accepted / Pending / Rejected)."""
        self.connection_count = 0
        self.connect_failures = 0
        self.reset_count = 0
        self.last_connect_error: BaseException | None = None
        self.last_http_status: int | None = None
        """HTTP status of the last refused handshake (401, 404, 400 ...)."""
        self.last_refusal: str | None = None
        """The last attempt's refusal as the CSMS explained it, e.g. ``HTTP 403 Forbidden:
        security profile 2: TLS required (connect with wss://)``; None when the last attempt
        connected or failed otherwise (see ``connect_problem``)."""
        self.connect_problem: str | None = None
        """Why the last connection attempt failed (refusal, TLS, network); None once
        connected."""
        self.problem_listeners: list[ProblemListener] = []
        """Called with every failed connection attempt (the fleet reports them)."""
        self.subprotocol: str | None = None
        """Subprotocol the CSMS selected on the last connection."""
        self.close_code: int | None = None
        """Close code of the last closed connection (1006 = dropped without close frame)."""
        self.close_reason: str | None = None
        self.closes: list[tuple[int | None, str | None]] = []
        """(close code, reason) of every closed connection."""
        self.gave_up = False
        self.received: list[ReceivedCommand] = []
        self.sent: list[SentMessage] = []
        self.frames: list[Frame] = []
        self.frames_sent = 0
        self.frames_received = 0
        self.unexpected_responses = 0
        self.uploads: list[tuple[str, bool]] = []
        """(target URL, success) of every upload attempt sequence."""
        self.faults: dict[int, str] = {}
        """connector/EVSE -> error code re-reported after every boot until cleared."""
        self.fault_details: dict[int, tuple[str | None, str | None]] = {}
        """connector/EVSE -> (vendor error code / techCode, info / techInfo) of ``faults``."""
        self.fault_components: dict[int, tuple[str, str]] = {}
        """connector/EVSE -> 2.0.1 (component, variable) of ``faults`` overriding the default
        mapping of the error code."""
        self.inoperative_fault_status = "Faulted"
        """Status a faulted connector reports once set Inoperative: ``Faulted`` (the fault wins,
        default) or ``Unavailable`` (with the error code / NotifyEvent still active)."""
        self.healed_by: str | None = None
        """What cleared the scenario fault last: ``unlock``, ``availability``, ``soft_reset``,
        ``hard_reset`` or ``self`` (cleared on its own); None while never healed."""
        self.heals: list[str] = []
        """Every heal, in order (a flapping fault heals more than once)."""
        self.inoperative: set[int] = set()
        """Connectors (1.6, 0 = whole station) / EVSEs set Inoperative; survives reboots."""
        self.sessions: dict[int, Session] = {}
        self.connector_status: dict[int, str] = {}
        """Last status reported per connector (1.6) / EVSE (2.0.1)."""
        self.diagnostics_status = "Idle"
        self.log_status: tuple[str, int | None] = ("Idle", None)

        # Internals.
        self._ws: ClientConnection | None = None
        self._runner: asyncio.Task[None] | None = None
        self._stopping = False
        self._online = asyncio.Event()
        """Cleared by go_offline(): the runner does not reconnect until it is set again."""
        self._online.set()
        self._disconnected = asyncio.Event()
        self._disconnected.set()
        self._accepted = asyncio.Event()
        self._hb_changed = asyncio.Event()
        self._hb_override = heartbeat_interval
        self._csms_interval: float = 300.0
        self._needs_boot = True
        self._next_boot_reason = "PowerUp"
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._abandoned: deque[str] = deque(maxlen=100)
        self._call_lock = asyncio.Lock()
        self._conn_tasks: set[asyncio.Task[Any]] = set()
        self._log_task: asyncio.Task[Any] | None = None
        self._waiters: list[asyncio.Future[None]] = []
        self._consumed: set[tuple[str, int]] = set()
        self._seq = 0
        self._retry_after = self.boot_retry_interval
        self._muted = False
        """Silent (hung) station: incoming frames ignored, nothing sent; socket kept open."""
        self._handlers: dict[str, Handler] = {
            "GetLog": self._on_get_log,
            "ClearCache": self._on_clear_cache,
            "DataTransfer": self._on_data_transfer,
        }
        self._setup()
        self.scenario: Scenario | None = None
        """Named fault scenario applied to this station (see :mod:`simulators.scenarios`)."""
        self.scenario_run: ScenarioRun | None = None
        if scenario is not None:
            (get_scenario(scenario) if isinstance(scenario, str) else scenario).apply(self)

    # ---------------------------------------------------------------- public lifecycle API

    @property
    def connected(self) -> bool:
        """True while the WebSocket is open."""
        return self._ws is not None

    @property
    def heartbeat_interval(self) -> float:
        """Effective heartbeat interval: constructor/CSMS override, else the boot interval."""
        return self._hb_override if self._hb_override is not None else self._csms_interval

    @property
    def security_profile(self) -> int:
        """The OCPP security profile this station connects with: 3 with ``wss://`` and a
        client certificate, 2 with ``wss://`` and a password, 1 with a password, else 0."""
        tls = self.url.lower().startswith("wss://")
        if tls and self.tls.client_certificate:
            return 3
        if self.password:
            return 2 if tls else 1
        return 0

    @property
    def endpoint(self) -> str:
        """Full WebSocket URL: ``<url>/<percent-encoded id>`` (OCPP-J 1.6 §3.1.1)."""
        return f"{self.url.rstrip('/')}/{quote(self.station_id, safe='')}"

    async def start(self, *, timeout: float = 10.0, wait: bool = True) -> None:
        """Connect and boot; with ``wait``, return once booted Accepted or raise
        :class:`BootTimeout` (the station is stopped then)."""
        if self._runner is not None and not self._runner.done():
            raise RuntimeError(f"{self.station_id} already started")
        self._stopping = False
        self.gave_up = False
        self._online.set()
        self._needs_boot = True  # (re)starting is a power-up
        self._runner = asyncio.create_task(self._run(), name=f"sim-{self.station_id}")
        if wait:
            await self._wait_booted(timeout)

    async def stop(self) -> None:
        """Close the connection gracefully and stop all background work."""
        self._stopping = True
        self._online.set()
        self._muted = False
        if self.scenario_run is not None:
            await self.scenario_run.stop()
        runner, self._runner = self._runner, None
        if runner is not None:
            await self._cancel_all([runner])

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def go_offline(self, *, graceful: bool = False, timeout: float = 5.0) -> None:
        """Lose the network: drop the connection (abruptly unless ``graceful``) and do not
        reconnect until :meth:`come_online`."""
        self._online.clear()
        await self._drop_connection(hard=not graceful)
        async with asyncio.timeout(timeout):
            await self._disconnected.wait()

    def go_silent(self) -> None:
        """Hang: keep the WebSocket open but ignore every frame and send nothing (no
        heartbeats, no answers); do not reconnect if the CSMS closes the connection. The
        WebSocket layer still answers pings. :meth:`come_back` ends it."""
        self._muted = True
        self._online.clear()

    async def come_back(self, *, boot: bool = False, wait: bool = True,
                        timeout: float = 10.0) -> None:
        """End :meth:`go_offline` / :meth:`go_silent`: a silent station drops its hung
        connection first; reconnect (with a BootNotification if ``boot``, i.e. it rebooted)."""
        if self._muted:
            self._muted = False
            await self._drop_connection(hard=True)
            async with asyncio.timeout(timeout):
                await self._disconnected.wait()
        if boot:
            self._needs_boot = True
            self._next_boot_reason = "PowerUp"
        await self.come_online(wait=wait, timeout=timeout)

    async def come_online(self, *, wait: bool = True, timeout: float = 10.0) -> None:
        """Network back: reconnect (no BootNotification unless ``boot_on_reconnect``, since the
        station did not reboot) and resend StatusNotifications."""
        self._online.set()
        if wait:
            await self._wait_booted(timeout, stop_on_timeout=False)

    async def reboot(
        self, *, reason: str = "PowerUp", wait: bool = True, timeout: float = 10.0
    ) -> None:
        """Local power cycle: drop the connection, reconnect and boot with ``reason`` (2.0.1)."""
        self._needs_boot = True
        self._next_boot_reason = reason
        await self._drop_connection(hard=True)
        if wait:
            async with asyncio.timeout(timeout):
                await self._disconnected.wait()
            await self._wait_booted(timeout, stop_on_timeout=False)

    async def wait_for_command(
        self,
        action: str,
        timeout: float = 5.0,
        predicate: Callable[[ReceivedCommand], bool] | None = None,
    ) -> ReceivedCommand:
        """Next not-yet-awaited CALL ``action`` from the CSMS (in arrival order)."""
        return await self._wait_record(self.received, "in", action, timeout, predicate)

    async def wait_for_sent(
        self,
        action: str,
        timeout: float = 5.0,
        predicate: Callable[[SentMessage], bool] | None = None,
    ) -> SentMessage:
        """Next not-yet-awaited CALL ``action`` sent by the station."""
        return await self._wait_record(self.sent, "out", action, timeout, predicate)

    # ---------------------------------------------------------------- public message API

    async def heartbeat(self) -> JSON:
        """Send Heartbeat (1.6 §4.6, 2.0.1 G02) and return the answer."""
        return await self.call_action("Heartbeat", {})

    async def call(self, payload: Any, *, validate: bool = True) -> JSON:
        """Send a CALL built from an ``ocpp`` library payload dataclass (``ocpp.v16.call.X`` /
        ``ocpp.v201.call.X``); return the CALLRESULT payload (camelCase dict). Raises
        :class:`CallErrorResponse` on a CALLERROR."""
        action = type(payload).__name__
        body = remove_nones(snake_to_camel_case(serialize_as_dict(payload)))
        return await self.call_action(action, cast(JSON, body), validate=validate)

    async def call_action(
        self,
        action: str,
        payload: JSON,
        *,
        validate: bool = True,
        timeout: float | None = None,
    ) -> JSON:
        """Send CALL ``action`` with a camelCase payload and wait for the answer.

        One outstanding CALL at a time (OCPP-J 1.6 §4.1.1). ``validate=False`` sends payloads the
        schema would refuse (non-conformant chargers).
        """
        message = Call(str(uuid.uuid4()), action, payload)
        if validate:
            await validate_payload(message, self.ocpp_version)
        async with self._call_lock:
            ws = self._ws
            if ws is None:
                raise NotConnectedError(f"{self.station_id} is not connected")
            record = SentMessage(action, payload, _now(), message.unique_id)
            self._record(self.sent, record)
            future = self._new_pending(message.unique_id)
            try:
                await self._send_frame(ws, message.to_json())
                async with asyncio.timeout(timeout or self.response_timeout):
                    answer = await future
            finally:
                self._forget_pending(message.unique_id)
        if isinstance(answer, CallError):
            record.error_code = answer.error_code
            raise CallErrorResponse(
                action, answer.error_code, answer.error_description, answer.error_details
            )
        result = cast(JSON, answer.payload)
        record.response = result
        return result

    async def send_raw(
        self, text: str, *, await_response: bool = False, timeout: float | None = None
    ) -> list[Any] | None:
        """Send ``text`` as is. With ``await_response`` (``text`` must be a CALL array), return
        the CSMS's answer frame as a parsed JSON list (CALLRESULT or CALLERROR)."""
        ws = self._ws
        if ws is None:
            raise NotConnectedError(f"{self.station_id} is not connected")
        if not await_response:
            await self._send_frame(ws, text)
            return None
        unique_id = str(json.loads(text)[1])
        future = self._new_pending(unique_id)
        try:
            await self._send_frame(ws, text)
            async with asyncio.timeout(timeout or self.response_timeout):
                answer = await future
        finally:
            self._forget_pending(unique_id)
        return cast(list[Any], json.loads(answer.to_json()))

    async def inject_fault(
        self,
        connector: int,
        error_code: str,
        vendor_error_code: str | None = None,
        info: str | None = None,
    ) -> None:
        """Persistent fault: report it now (if connected) and after every boot until
        :meth:`clear_fault`."""
        self.faults[connector] = error_code
        self.fault_details[connector] = (vendor_error_code, info)
        if self.connected:
            await self._report_current(connector)

    def set_fault_component(self, connector: int, component: str, variable: str) -> None:
        """2.0.1: report the fault of ``connector`` on ``component.variable`` instead of the
        default for its error code (e.g. ``Controller.Problem`` for an InternalError)."""
        self.fault_components[connector] = (component, variable)

    async def clear_fault(self, connector: int) -> None:
        """Clear a fault injected with :meth:`inject_fault` and report the normal status."""
        self.faults.pop(connector, None)
        self.fault_details.pop(connector, None)
        self.fault_components.pop(connector, None)
        if self.connected:
            await self.set_status(connector, self._normal_status(connector), "NoError")

    def _fault_status(self, connector: int) -> str:
        """Status of a faulted connector (see ``inoperative_fault_status``)."""
        inoperative = connector in self.inoperative or 0 in self.inoperative
        return self.inoperative_fault_status if inoperative else "Faulted"

    # ---------------------------------------------------------------- version hooks

    @abstractmethod
    def _setup(self) -> None:
        """Version-specific state and handlers (end of ``__init__``)."""

    @abstractmethod
    def _boot_payload(self, reason: str) -> JSON:
        """BootNotification request payload."""

    @abstractmethod
    def _on_heartbeat_interval(self, interval: float) -> None:
        """Store the interval accepted at boot in the configuration."""

    @abstractmethod
    async def _send_initial_statuses(self) -> None:
        """StatusNotification for every connector after boot / reconnect (faults included)."""

    @abstractmethod
    async def _end_sessions_for_reset(self, hard: bool) -> None:
        """Stop every transaction before a reset (1.6 §5.14, 2.0.1 B12)."""

    @abstractmethod
    def _normal_status(self, connector: int) -> str:
        """Status of a connector without fault (Available / Unavailable / Charging ...)."""

    @abstractmethod
    async def _report_current(self, connector: int) -> None:
        """StatusNotification of the current state of ``connector`` (fault re-reported)."""

    @abstractmethod
    async def set_status(
        self,
        connector: int,
        status: str,
        error_code: str = "NoError",
        vendor_error_code: str | None = None,
        info: str | None = None,
        *,
        validate: bool = True,
    ) -> None:
        """Report a connector status (1.6 §4.9, 2.0.1 G01 + N07 for errors)."""

    @abstractmethod
    async def start_session(
        self, connector: int, id_tag: str, meter_start_wh: float = 0, *, authorize: bool = True
    ) -> Session:
        """Start a charging session (1.6 §4.1/4.8, 2.0.1 E01-E03)."""

    @abstractmethod
    async def send_meter_values(
        self, connector: int, energy_wh: float, power_w: float | None = None
    ) -> None:
        """Send meter values (1.6 §4.7, 2.0.1 E02 TransactionEvent Updated / J01 MeterValues)."""

    @abstractmethod
    async def stop_session(
        self, connector: int, meter_stop_wh: float | None = None, reason: str = "Local"
    ) -> None:
        """Stop the session on ``connector`` (1.6 §4.10, 2.0.1 E06)."""

    def _map_error_code(self, code: str) -> str:
        """CALLERROR code spelling of the version (1.6 spells FormationViolation)."""
        return code

    # ---------------------------------------------------------------- connection loop

    async def _run(self) -> None:
        """Connect, serve, reconnect after ``reconnect_delay`` until :meth:`stop`."""
        failures = 0
        while not self._stopping:
            if not self._online.is_set():
                await self._online.wait()
                continue
            ws = await self._connect()
            if ws is None:
                failures += 1
                if self.max_connect_attempts is not None and failures >= self.max_connect_attempts:
                    self.gave_up = True
                    log.warning("%s: giving up after %d connection attempts", self.station_id,
                                failures)
                    return
                await asyncio.sleep(min(self.reconnect_delay * 2 ** min(failures - 1, 10),
                                        max(MAX_BACKOFF, self.reconnect_delay)))
                continue
            failures = 0
            await self._serve(ws)
            if not self._stopping and self._online.is_set():
                await asyncio.sleep(self.reconnect_delay)

    def tls_context(self) -> ssl.SSLContext:
        """The client TLS context of ``wss://`` and HTTPS uploads (built once)."""
        if self._ssl_context is None:
            self._ssl_context = self.tls.context(self.station_id)
        return self._ssl_context

    async def _default_upload(self, target: str, data: bytes) -> bool:
        """:func:`~simulators.upload.default_uploader` trusting the station's CA file."""
        https = urlsplit(target).scheme.lower() == "https"
        return await default_uploader(target, data,
                                      ssl_context=self.tls_context() if https else None)

    async def _connect(self) -> ClientConnection | None:
        headers: dict[str, str] = {}
        if self.password is not None:
            token = base64.b64encode(f"{self.station_id}:{self.password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        endpoint = self.endpoint
        try:
            context = self.tls_context() if endpoint.lower().startswith("wss://") else None
            ws = await connect(
                endpoint,
                subprotocols=cast(Any, self.subprotocols) or None,
                additional_headers=headers,
                ssl=context,
                open_timeout=self.open_timeout,
                ping_interval=self.ping_interval,
                close_timeout=2,
                compression=None,
                proxy=None,
                user_agent_header=f"{self.vendor}-{self.model}/{self.firmware} csms-sim",
            )
        except (OSError, InvalidHandshake, TimeoutError, ValueError) as exc:
            self._connect_failed(exc)
            return None
        self.last_http_status = None
        self.last_refusal = self.connect_problem = None
        return ws

    def _connect_failed(self, exc: BaseException) -> None:
        """Record, log and report a failed attempt (logged at WARNING when the reason changes
        and no listener reports it, e.g. the fleet's)."""
        self.connect_failures += 1
        self.last_connect_error = exc
        if isinstance(exc, InvalidStatus):
            self.last_http_status = exc.response.status_code
        tls = self.endpoint.lower().startswith("wss://")
        problem = describe_connect_error(exc, tls=tls)
        self.last_refusal = problem if isinstance(exc, InvalidStatus) else None
        loud = problem != self.connect_problem and not self.problem_listeners
        self.connect_problem = problem
        log.log(logging.WARNING if loud else logging.INFO, "%s: connect to %s failed: %s",
                self.station_id, self.endpoint, problem)
        for listener in self.problem_listeners:
            listener(self, problem)

    async def _serve(self, ws: ClientConnection) -> None:
        """Run one connection until it closes."""
        self._ws = ws
        self._disconnected.clear()
        self.connection_count += 1
        self.subprotocol = ws.subprotocol
        reader = asyncio.create_task(self._reader(ws))
        self._spawn(self._operate())
        try:
            await reader
        finally:
            self._ws = None
            self.booted.clear()
            if self._stopping:
                with contextlib.suppress(Exception):
                    await ws.close()
            self.close_code, self.close_reason = ws.close_code, ws.close_reason
            self.closes.append((ws.close_code, ws.close_reason))
            del self.closes[: -self.max_records]
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(NotConnectedError("connection closed"))
            await self._cancel_all([*self._conn_tasks, reader])
            self._disconnected.set()
            log.info("%s: disconnected (%s %s)", self.station_id, self.close_code,
                     self.close_reason)

    async def _drop_connection(self, *, hard: bool) -> None:
        """Close the WebSocket: abort the TCP connection (power loss) or close cleanly."""
        ws = self._ws
        if ws is None:
            return
        if hard:
            ws.transport.abort()
        else:
            await ws.close(1001, "going away")

    async def _reader(self, ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                if isinstance(raw, bytes):
                    log.warning("%s: ignoring binary frame", self.station_id)
                    continue
                self.frames_received += 1
                self._record(self.frames, Frame("in", raw, _now()))
                if self._muted:
                    continue  # hung station: reads but never reacts
                self._on_frame(raw)

    def _on_frame(self, raw: str) -> None:
        """Route one incoming frame (OCPP-J 1.6 §4.1)."""
        try:
            message = unpack(raw)
        except OCPPError as exc:
            log.warning("%s: unparsable frame %r: %s", self.station_id, raw, exc)
            with contextlib.suppress(ValueError, TypeError, IndexError, KeyError):
                parsed = json.loads(raw)
                if parsed[0] == 2 and isinstance(parsed[1], str):
                    self._spawn(self._send_error(parsed[1], exc.code, str(exc.description)))
            return
        if isinstance(message, Call):
            record = ReceivedCommand(message.action, message.payload, _now(), message.unique_id)
            self._record(self.received, record)
            self._spawn(self._dispatch(message, record))
            return
        future = self._pending.get(message.unique_id)
        if future is not None and not future.done():
            future.set_result(message)
        elif message.unique_id in self._abandoned:
            log.info("%s: late answer to abandoned CALL: %r", self.station_id, raw)
        else:
            self.unexpected_responses += 1
            log.warning("%s: answer to unknown CALL: %r", self.station_id, raw)

    # ---------------------------------------------------------------- incoming CALLs

    async def _dispatch(self, message: Call, record: ReceivedCommand) -> None:
        """Answer one CALL of the CSMS according to :class:`Behaviour`."""
        action = message.action
        mode = self.behaviour.mode_for(action)
        if mode is Mode.TIMEOUT:
            log.info("%s: not answering %s (behaviour timeout)", self.station_id, action)
            return
        delay = self.behaviour.delay_for(action)
        if delay:
            await asyncio.sleep(delay)
        if mode is Mode.CALL_ERROR:
            await self._answer_error(record, "InternalError", "simulated internal error")
            return
        handler = self._handlers.get(action)
        if handler is None:
            code = "NotSupported" if action in self.known_actions else "NotImplemented"
            await self._answer_error(record, code, f"{action} not handled by the simulator")
            return
        try:
            await validate_payload(message, self.ocpp_version)
        except OCPPError as exc:
            await self._answer_error(record, exc.code, str(exc.description), exc.details)
            return
        try:
            reply = await handler(record.payload, mode)
        except OCPPError as exc:
            await self._answer_error(record, exc.code, str(exc.description), exc.details)
            return
        except Exception as exc:
            log.exception("%s: handler for %s failed", self.station_id, action)
            await self._answer_error(record, "InternalError", repr(exc))
            return
        if reply is None:
            await self._answer_error(record, self.behaviour.not_supported_error_code,
                                     f"{action} not supported")
            return
        result = CallResult(message.unique_id, reply.payload, action)
        try:
            await validate_payload(result, self.ocpp_version)
        except OCPPError as exc:  # a simulator bug: make it loud.
            log.error("%s: invalid %s answer %r: %s", self.station_id, action, reply.payload, exc)
            await self._answer_error(record, "InternalError", f"simulator bug: {exc}")
            return
        if self.scenario_run is not None:
            reply = self.scenario_run.adjust_reply(action, record.payload, reply)
        before = self.behaviour.notify_before_result
        if before and reply.first is not None:
            await self._run_follow_up(reply.first)
        ws = self._ws
        if ws is None:
            return
        record.response = reply.payload
        await self._send_frame(ws, CallResult(message.unique_id, reply.payload).to_json())
        if not before and reply.first is not None:
            await self._run_follow_up(reply.first)
        if reply.rest is not None:
            await self._run_follow_up(reply.rest)

    async def _run_follow_up(self, follow_up: FollowUp) -> None:
        try:
            await follow_up()
        except (StationError, TimeoutError) as exc:
            log.warning("%s: follow-up failed: %r", self.station_id, exc)

    async def _answer_error(
        self, record: ReceivedCommand, code: str, description: str, details: Any = None
    ) -> None:
        record.error_code = self._map_error_code(code)
        await self._send_error(record.unique_id, code, description, details)

    async def _send_error(
        self, unique_id: str, code: str, description: str, details: Any = None
    ) -> None:
        ws = self._ws
        if ws is None:
            return
        error = CallError(unique_id, self._map_error_code(code), description, details or {})
        await self._send_frame(ws, error.to_json())

    async def _send_frame(self, ws: ClientConnection, text: str) -> None:
        if self._muted:
            raise NotConnectedError(f"{self.station_id}: silent")
        self.frames_sent += 1
        self._record(self.frames, Frame("out", text, _now()))
        try:
            await ws.send(text)
        except ConnectionClosed as exc:
            raise NotConnectedError(f"{self.station_id}: connection closed") from exc

    async def notify(self, action: str, payload: JSON, *, validate: bool = True) -> JSON | None:
        """Send a notification CALL, logging instead of raising on CALLERROR / no answer."""
        try:
            return await self.call_action(action, payload, validate=validate)
        except (CallErrorResponse, TimeoutError) as exc:
            log.warning("%s: %s failed: %r", self.station_id, action, exc)
            return None

    # ---------------------------------------------------------------- boot and heartbeat

    async def _operate(self) -> None:
        """Boot (if needed), initial statuses, then the heartbeat loop, for one connection."""
        try:
            booting = self._needs_boot or self.boot_on_reconnect
            if booting:
                await self._boot_until_accepted()
            await self._send_initial_statuses()
            self.booted.set()
            self._wake_waiters()
            if booting and self.scenario_run is not None:
                self.scenario_run.on_boot()
            await self._heartbeat_loop()
        except NotConnectedError:
            return

    async def send_boot(self, reason: str | None = None) -> str:
        """Send one BootNotification (1.6 §4.2, 2.0.1 B01) and apply the answer; return its
        status."""
        answer = await self.call_action(
            "BootNotification", self._boot_payload(reason or self._next_boot_reason)
        )
        status = str(answer["status"])
        self.boot_status = status
        interval = float(answer.get("interval", 0))
        if status == "Accepted":
            self.boot_count += 1
            self._needs_boot = False
            self._next_boot_reason = "PowerUp"
            if interval > 0:
                self._csms_interval = interval
                self._on_heartbeat_interval(interval)
                self._hb_changed.set()
            self._accepted.set()
        else:
            self._retry_after = interval if interval > 0 else self.boot_retry_interval
        return status

    async def _boot_until_accepted(self) -> None:
        """Boot, retrying after ``interval`` while Pending/Rejected (1.6 §4.2.1, 2.0.1 B02/B03).
        A triggered BootNotification that gets Accepted also ends the wait."""
        self._accepted.clear()
        while not self._accepted.is_set():
            self._retry_after = self.boot_retry_interval
            try:
                await self.send_boot()
            except (CallErrorResponse, TimeoutError) as exc:
                log.warning("%s: BootNotification failed: %r", self.station_id, exc)
            if self._accepted.is_set():
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._retry_after):
                    await self._accepted.wait()

    def set_heartbeat_interval(self, seconds: float) -> None:
        """Change the heartbeat interval now (ChangeConfiguration / SetVariables)."""
        self._hb_override = seconds
        self._hb_changed.set()

    async def _heartbeat_loop(self) -> None:
        """Heartbeat every ``heartbeat_interval`` s; 0 disables; changes apply at once."""
        while self._ws is not None:
            self._hb_changed.clear()
            interval = self.heartbeat_interval
            try:
                if interval <= 0:
                    await self._hb_changed.wait()
                    continue
                async with asyncio.timeout(interval):
                    await self._hb_changed.wait()
                continue
            except TimeoutError:
                pass
            try:
                await self.heartbeat()
            except (CallErrorResponse, TimeoutError) as exc:
                log.warning("%s: Heartbeat failed: %r", self.station_id, exc)

    # ---------------------------------------------------------------- shared commands

    async def _perform_reset(self, *, hard: bool, boot_reason: str) -> None:
        """After answering Reset: end transactions, drop the connection; the runner reconnects
        after ``reconnect_delay`` and boots (1.6 §5.14, 2.0.1 B11/B12)."""
        await self._end_sessions_for_reset(hard)
        await asyncio.sleep(self.behaviour.reset_delay)
        self.reset_count += 1
        if self.scenario_run is not None:
            self.scenario_run.on_reset(hard=hard)
        self._needs_boot = True
        self._next_boot_reason = self.behaviour.boot_reason_after_reset or boot_reason
        await self._drop_connection(hard=hard)

    def _status_or_none(
        self,
        mode: Mode,
        *,
        accepted: str = "Accepted",
        rejected: str = "Rejected",
        not_supported: str | None = None,
    ) -> str | None:
        """Status for a response mode; None means "answer with a CALLERROR"."""
        if mode is Mode.REJECT:
            return rejected
        if mode is Mode.NOT_SUPPORTED:
            return not_supported
        return accepted

    def _status_reply(self, status: str, targets: list[int]) -> Reply:
        """Reply whose follow-ups report the new status of ``targets`` (first one may go
        before the CALLRESULT)."""

        async def first() -> None:
            if targets:
                await self.set_status(targets[0], self._normal_status(targets[0]))

        async def rest() -> None:
            for c in targets[1:]:
                await self.set_status(c, self._normal_status(c))

        return Reply({"status": status}, first, rest)

    async def _report_log_status(self, status: str, request_id: int | None) -> None:
        """LogStatusNotification (1.6 security whitepaper "Get Security Log", 2.0.1 N01)."""
        payload: JSON = {"status": status}
        if request_id is not None:
            payload["requestId"] = request_id
        busy = status == "Uploading"
        self.log_status = (status if busy else "Idle", request_id if busy else None)
        await self.notify("LogStatusNotification", payload)

    def _upload_reply(
        self,
        payload: JSON,
        *,
        location: str,
        filename: str,
        retries: int,
        retry_interval: float,
        report: Callable[[str], Awaitable[None]],
        uploading: str,
        uploaded: str,
        failed: str,
    ) -> Reply:
        """Reply whose follow-ups report ``uploading``, upload, then report the result,
        honouring the Behaviour quirks (duplicate / early / missing notifications)."""
        behaviour = self.behaviour
        target = upload_target(location, filename, append_filename=behaviour.upload_append_filename)

        async def first() -> None:
            await report(uploading)
            if behaviour.duplicate_progress:
                await report(uploading)

        async def rest() -> None:
            if self.scenario_run is not None and self.scenario_run.upload_hangs:
                return  # "Uploading", then nothing: no upload, no final status
            ok = await self._upload(target, retries, retry_interval)
            if not behaviour.skip_final_log_status:
                await report(uploaded if ok else failed)

        return Reply(payload, first, rest)

    async def _upload(self, target: str, retries: int, retry_interval: float) -> bool:
        """Upload the generated log with up to ``retries`` retries (bounded to 5)."""
        data = self.log_text().encode()
        attempts = 1 + max(0, min(retries, 5))
        ok = False
        refusal = None if self.scenario_run is None else self.scenario_run.upload_refusal(target)
        if refusal is not None:
            log.warning("%s: upload to %s failed: %s", self.station_id, target, refusal)
            self.uploads.append((target, False))
            return False
        for attempt in range(attempts):
            try:
                ok = await self.uploader(target, data)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("%s: upload to %s failed: %r", self.station_id, target, exc)
                ok = False
            if ok:
                break
            if attempt + 1 < attempts:
                await asyncio.sleep(min(max(retry_interval, 0.0), 60.0))
        self.uploads.append((target, ok))
        return ok

    def log_text(self) -> str:
        """Content of the generated diagnostics/log file: header plus the last frames."""
        lines = [
            f"# csms-sim log of {self.station_id} ({self.vendor} {self.model} {self.firmware})",
            f"# generated {utc_now_iso()} ocpp {self.ocpp_version} boots={self.boot_count}",
        ]
        if self.scenario_run is not None:
            lines += self.scenario_run.log_lines()
        lines += [f"{_iso(f.timestamp)} DEBUG ocpp {f.direction} {f.text}"
                  for f in self.frames[-200:]]
        return "\n".join(lines) + "\n"

    def _log_filename(self, prefix: str) -> str:
        stamp = _now().strftime("%Y%m%dT%H%M%SZ")
        return f"{prefix}-{self.station_id}-{stamp}.log".replace("/", "_")

    async def _on_get_log(self, payload: JSON, mode: Mode) -> Reply | None:
        """GetLog (1.6 security extension, 2.0.1 N01): Accepted + filename, then
        LogStatusNotification Uploading / Uploaded|UploadFailure with the requestId. A new
        request while an upload runs cancels it (AcceptedCanceled)."""
        status = self._status_or_none(mode)
        if status is None:
            return None
        if status != "Accepted":
            return Reply({"status": status})
        request_id = int(payload["requestId"])
        previous = self._log_task
        if previous is not None and not previous.done():
            previous.cancel()
            status = "AcceptedCanceled"
        self._log_task = asyncio.current_task()  # the dispatch task also runs the follow-ups
        filename = self._log_filename(str(payload.get("logType", "Log")))

        async def report(value: str) -> None:
            await self._report_log_status(value, request_id)

        return self._upload_reply(
            {"status": status, "filename": filename},
            location=str(payload["log"]["remoteLocation"]),
            filename=filename,
            retries=int(payload.get("retries", 0)),
            retry_interval=float(payload.get("retryInterval", 0)),
            report=report,
            uploading="Uploading",
            uploaded="Uploaded",
            failed="UploadFailure",
        )

    async def _on_clear_cache(self, payload: JSON, mode: Mode) -> Reply | None:
        """ClearCache (1.6 §5.4, 2.0.1 C11)."""
        status = self._status_or_none(mode)
        return None if status is None else Reply({"status": status})

    async def _on_data_transfer(self, payload: JSON, mode: Mode) -> Reply | None:
        """DataTransfer (1.6 §5.6, 2.0.1 P01): no vendor extensions, so UnknownVendorId."""
        status = self._status_or_none(
            mode, accepted="UnknownVendorId", not_supported="UnknownVendorId"
        )
        return None if status is None else Reply({"status": status})

    # ---------------------------------------------------------------- records and helpers

    def _record(self, records: list[Any], item: Any) -> None:
        self._seq += 1
        if hasattr(item, "seq"):
            item.seq = self._seq
        records.append(item)
        if len(records) > self.max_records:
            del records[: len(records) - self.max_records]
        self._wake_waiters()

    def _wake_waiters(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    async def _wait_record(
        self,
        records: list[R],
        direction: str,
        action: str,
        timeout: float,
        predicate: Callable[[R], bool] | None,
    ) -> R:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for item in records:
                key = (direction, item.seq)
                if (
                    item.action == action
                    and key not in self._consumed
                    and (predicate is None or predicate(item))
                ):
                    self._consumed.add(key)
                    return item
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"{self.station_id}: no {direction} {action} in {timeout}s")
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append(waiter)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await waiter

    async def _wait_booted(self, timeout: float, *, stop_on_timeout: bool = True) -> None:
        runner = self._runner
        booted = asyncio.create_task(self.booted.wait())
        waits: set[asyncio.Future[Any]] = {booted}
        if runner is not None:
            waits.add(runner)
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            booted.cancel()
        if self.booted.is_set():
            return
        problem = "" if self.connect_problem is None else f": {self.connect_problem}"
        error = self.last_connect_error
        detail = (
            f"boot_status={self.boot_status} http_status={self.last_http_status} "
            f"connect_error={error if error is None else type(error).__name__} "
            f"subprotocol={self.subprotocol} "
            f"close={self.close_code} {self.close_reason}"
        )
        if runner is not None and runner.done() and not runner.cancelled():
            exc = runner.exception()
            if exc is not None:
                raise exc
        if stop_on_timeout:
            await self.stop()
        given_up = " (gave up connecting)" if self.gave_up else ""
        raise BootTimeout(f"{self.station_id} not booted within {timeout}s{given_up}{problem} "
                          f"({detail})")

    def _new_pending(self, unique_id: str) -> asyncio.Future[Any]:
        """Future resolved by the answer frame to CALL ``unique_id``."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        # Mark a failure as retrieved even when the waiting task was cancelled meanwhile.
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._pending[unique_id] = future
        return future

    def _forget_pending(self, unique_id: str) -> None:
        future = self._pending.pop(unique_id, None)
        if future is not None and (not future.done() or future.cancelled()):
            self._abandoned.append(unique_id)  # timed out / cancelled: answer may still come

    @staticmethod
    async def _cancel_all(tasks: list[asyncio.Task[Any]]) -> None:
        """Cancel ``tasks`` and wait for them; re-cancel (bounded) any task that swallowed the
        cancellation."""
        for _ in range(20):
            pending = [t for t in tasks if not t.done()]
            if not pending:
                return
            for task in pending:
                task.cancel()
            await asyncio.wait(pending, timeout=0.5)
        log.error("tasks did not stop: %r", [t for t in tasks if not t.done()])

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        """Connection-scoped background task (cancelled on disconnect)."""
        task = asyncio.ensure_future(coro)
        self._conn_tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._conn_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            if not isinstance(exc, NotConnectedError):
                log.error("%s: background task failed", self.station_id, exc_info=exc)
