"""One charger's OCPP-J session on top of the ``ocpp`` library's :class:`ChargePoint`.

The library gives us routing (``@on``), the message classes, the error classes and the JSON
schemas. We replace its per-frame machinery, which costs hundreds of microseconds per message
(validation in a thread pool, regex key conversion, a single response queue), with:

- synchronous compiled schema validation that keeps the library's verdicts
  (:mod:`csms.protocol.validation`), tolerant of the values real chargers send outside the
  schema, which are recorded rather than refused;
- cached camelCase/snake_case conversion (:mod:`csms.protocol.keys`);
- a CallError for every frame we cannot handle whose message id we can read (OCPP-J 1.6 §4.2.3,
  2.0.1 Part 4 §4.2.3: id ``-1`` when it cannot be read), never a dropped connection;
- one future per outstanding CALL, so a late or unknown CALLRESULT is logged and ignored, and a
  notification that arrives before the CALLRESULT of the request that caused it is handled
  like any other CALL.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import uuid
from typing import TYPE_CHECKING, Any, ClassVar

import structlog
from ocpp.charge_point import ChargePoint, _raise_key_error
from ocpp.exceptions import (
    FormatViolationError,
    OCPPError,
    ProtocolError,
)
from ocpp.messages import Call, CallError, CallResult, MessageType
from ocpp.routing import create_route_map
from websockets.exceptions import ConnectionClosed

from csms.logs import get_logger
from csms.protocol.keys import dumps, loads, payload_from_dataclass, to_snake
from csms.protocol.ports import StationBackend
from csms.protocol.validation import REAL_WORLD_TOLERANCE, PayloadValidator

if TYPE_CHECKING:
    from csms.metrics.ocpp import OcppMeter

_ID_PATTERN = re.compile(r'^\s*\[\s*\d+\s*,\s*"((?:[^"\\]|\\.){1,64})"')
_NO_TOLERANCE: frozenset[str] = frozenset()
_validators: dict[str, PayloadValidator] = {}


_ROUTE_MAPS: dict[type, dict[str, dict[str, Any]]] = {}


def _routes(cls: type) -> dict[str, dict[str, Any]]:
    """The ``@on`` handlers of an adapter class by action (unbound), built once per class."""
    found = _ROUTE_MAPS.get(cls)
    if found is None:
        found = _ROUTE_MAPS[cls] = create_route_map(cls)
    return found


class CallTimeout(Exception):
    """No CALLRESULT or CALLERROR arrived within the call timeout."""


class StationOffline(Exception):
    """The connection closed before (or while) a CALL could be answered."""


class StationConnection(ChargePoint):
    """Base of the version adapters: frame handling shared by OCPP 1.6J and 2.0.1."""

    _ocpp_version: ClassVar[str]
    #: Message id for a CALLERROR about a frame whose id cannot be read (2.0.1 only).
    unreadable_id: ClassVar[str | None] = None
    #: Shared by every session (the charger id is bound in the context variables).
    log: ClassVar[Any] = get_logger("csms.protocol")

    def __init__(
        self,
        station_id: str,
        connection: Any,
        backend: StationBackend,
        *,
        call_timeout: float = 30.0,
        heartbeat_interval: int = 300,
        log_frames: bool = False,
        metrics: OcppMeter | None = None,
    ) -> None:
        # The library's __init__ builds a route map per instance (a dir() walk of the whole
        # class: time and memory per connection in a reconnect storm); ours is per class.
        self.id = station_id
        self._connection = connection
        self._response_timeout = call_timeout
        self._call_lock = asyncio.Lock()
        self._unique_id_generator = uuid.uuid4
        self.backend = backend
        self.heartbeat_interval = heartbeat_interval
        self._log_frames = log_frames
        self._pending: dict[str, asyncio.Future[CallResult | CallError]] = {}
        self._closed = False
        self._tasks: set[asyncio.Task[Any]] = set()
        version = self._ocpp_version
        if version not in _validators:
            _validators[version] = PayloadValidator(version)
        self._validator = _validators[version]
        # Metrics hooks: one dict lookup and a few additions per message (csms.metrics.ocpp).
        self._meter = metrics.version(version) if metrics is not None else None

    @property
    def version(self) -> str:
        """The OCPP version this session speaks (``1.6`` or ``2.0.1``)."""
        return self._ocpp_version

    async def start(self) -> None:
        """Read and handle frames until the connection closes."""
        try:
            async for raw in self._connection:
                await self.route_message(raw)
        except ConnectionClosed:
            pass
        finally:
            self._closed = True
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(StationOffline("connection closed"))
            for task in list(self._tasks):
                task.cancel()

    async def route_message(self, raw_msg: str | bytes) -> None:
        """Handle one frame: a CALL gets exactly one answer; answers go to their CALL."""
        if self._log_frames:
            self.log.debug("frame_in", frame=raw_msg)
        if isinstance(raw_msg, bytes):
            try:
                raw_msg = raw_msg.decode("utf-8")
            except UnicodeDecodeError:
                await self._refuse_unreadable(
                    "", FormatViolationError(details={"cause": "binary frame is not UTF-8"})
                )
                return
        try:
            frame = loads(raw_msg)
        except ValueError:
            await self._refuse_unreadable(
                raw_msg, FormatViolationError(details={"cause": "frame is not valid JSON"})
            )
            return
        if not isinstance(frame, list) or len(frame) < 3 or type(frame[0]) is not int:
            await self._refuse_unreadable(
                raw_msg,
                ProtocolError(details={"cause": "an OCPP-J frame is a JSON array "
                                       "[MessageTypeId, MessageId, ...]"}),
            )
            return
        message_type, unique_id = frame[0], frame[1]
        if not isinstance(unique_id, str) or not unique_id or len(unique_id) > 36:
            await self._refuse_unreadable(
                raw_msg, ProtocolError(details={"cause": "MessageId must be a string of "
                                                "1 to 36 characters"}),
            )
            return
        # The message id is in the log lines about one message; binding it in the context
        # (so that handlers' lines carry it too) costs more than the rest of the dispatch,
        # so only when frames are logged (troubleshooting).
        if self._log_frames:
            structlog.contextvars.bind_contextvars(message_id=unique_id)
        try:
            if message_type == MessageType.Call:
                await self._on_call_frame(frame, unique_id)
            elif message_type in (MessageType.CallResult, MessageType.CallError):
                self._on_answer_frame(frame, unique_id)
            else:
                if self._meter is not None:
                    self._meter.malformed += 1
                await self._send_error(
                    unique_id,
                    ProtocolError(details={"cause": f"MessageTypeId {message_type} "
                                           "is not 2, 3 or 4"}),
                    code="MessageTypeNotSupported" if self.unreadable_id else None,
                )
        finally:
            if self._log_frames:
                structlog.contextvars.unbind_contextvars("message_id")

    async def _on_call_frame(self, frame: list[Any], unique_id: str) -> None:
        if len(frame) != 4 or not isinstance(frame[2], str) or not isinstance(frame[3], dict):
            if self._meter is not None:
                self._meter.malformed += 1
            await self._send_error(
                unique_id,
                FormatViolationError(details={"cause": "a CALL is [2, MessageId, Action, "
                                              "{payload}]"}),
            )
            return
        call = Call(unique_id, frame[2], frame[3])
        meter = self._meter.action(call.action) if self._meter is not None else None
        started = meter.received() if meter is not None else 0.0
        try:
            answer = await self._handle_call(call)
        except OCPPError as error:
            self.log.warning(
                "call_refused", action=call.action, code=error.code, cause=_cause(error),
                message_id=unique_id,
            )
            await self._send_error(unique_id, error)
            if meter is not None:
                meter.refused(started)
            return
        except Exception:
            self.log.exception("handler_failed", action=call.action, message_id=unique_id)
            await self._send_error(unique_id, None)
            if meter is not None:
                meter.refused(started)
            return
        await self._send(answer)
        if meter is not None:
            meter.answered(started)

    async def _handle_call(self, msg: Call) -> str:
        """Validate, dispatch to the ``@on`` handler, validate and serialise its answer."""
        handlers = _routes(type(self)).get(msg.action)
        if handlers is None or "_on_action" not in handlers:
            _raise_key_error(msg.action, self._ocpp_version)
            raise AssertionError("unreachable")  # _raise_key_error always raises here
        validate = not handlers.get("_skip_schema_validation", False)
        if validate:
            tolerance = REAL_WORLD_TOLERANCE.get((self._ocpp_version, msg.action), _NO_TOLERANCE)
            deviations = self._validator.validate(msg, tolerate=tolerance)
            if deviations:
                self.log.warning(
                    "non_conformant_values", action=msg.action, deviations=list(deviations),
                    message_id=msg.unique_id,
                )
        response = handlers["_on_action"](self, **to_snake(msg.payload))
        if inspect.isawaitable(response):
            response = await response
        result = msg.create_call_result(payload_from_dataclass(response))
        if validate:
            self._validator.validate(result)
        return dumps([MessageType.CallResult, msg.unique_id, result.payload])

    def _on_answer_frame(self, frame: list[Any], unique_id: str) -> None:
        future = self._pending.get(unique_id)
        if future is None or future.done():
            self.log.warning("unexpected_answer", message_id=unique_id,
                             detail="no CALL waits for this message id")
            return
        if frame[0] == MessageType.CallResult:
            payload = frame[2]
            if not isinstance(payload, dict):
                future.set_exception(
                    ProtocolError(details={"cause": "CALLRESULT payload is not an object"})
                )
                return
            future.set_result(CallResult(unique_id, payload))
        else:
            code = frame[2] if isinstance(frame[2], str) else "GenericError"
            description = frame[3] if len(frame) > 3 and isinstance(frame[3], str) else ""
            details = frame[4] if len(frame) > 4 and isinstance(frame[4], dict) else {}
            future.set_result(CallError(unique_id, code, description, details))

    async def request(self, payload: Any) -> CallResult | CallError:
        """Send a CALL built from a library request dataclass and wait for its answer.

        One CALL at a time per station (OCPP-J 1.6 §4.1.1, 2.0.1 Part 4 §4.1.1). Raises
        :class:`CallTimeout`, :class:`StationOffline`, or the library's error when the request
        or the answer violates the schema.
        """
        if self._closed:
            raise StationOffline("connection closed")
        action = type(payload).__name__
        call = Call(str(self._unique_id_generator()), action, payload_from_dataclass(payload))
        self._validator.validate(call)
        meter = self._meter.action(action) if self._meter is not None else None
        async with self._call_lock:
            if self._closed:
                raise StationOffline("connection closed")
            future: asyncio.Future[CallResult | CallError] = (
                asyncio.get_running_loop().create_future()
            )
            self._pending[call.unique_id] = future
            try:
                started = meter.call_sent() if meter is not None else 0.0
                await self._send(dumps([MessageType.Call, call.unique_id, action, call.payload]))
                try:
                    async with asyncio.timeout(self._response_timeout):
                        answer = await future
                except TimeoutError as exc:
                    if meter is not None:
                        meter.call_timed_out(started)
                    raise CallTimeout(
                        f"no answer to {action} within {self._response_timeout} s"
                    ) from exc
                if meter is not None:
                    meter.call_answered(started, isinstance(answer, CallError))
            except ConnectionClosed as exc:
                raise StationOffline("connection closed") from exc
            finally:
                self._pending.pop(call.unique_id, None)
        if isinstance(answer, CallResult):
            answer.action = action
            self._validator.validate(answer)
        return answer

    async def call(
        self,
        payload: Any,
        suppress: bool = True,
        unique_id: Any = None,
        skip_schema_validation: bool = False,
    ) -> Any:
        """The library's ``call()`` contract, on top of :meth:`request`."""
        answer = await self.request(payload)
        if isinstance(answer, CallError):
            if suppress:
                return None
            raise answer.to_exception()
        result_cls = getattr(self._call_result, type(payload).__name__)
        return result_cls(**to_snake(answer.payload))

    def spawn(self, coro: Any) -> None:
        """Run a follow-up (e.g. a command after a boot) without blocking frame handling."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _refuse_unreadable(self, raw: str, error: OCPPError) -> None:
        if self._meter is not None:
            self._meter.malformed += 1
        match = _ID_PATTERN.match(raw) if raw else None
        unique_id = match.group(1) if match else self.unreadable_id
        self.log.warning(
            "malformed_frame", code=error.code, cause=_cause(error), frame=raw[:200]
        )
        if unique_id is not None:
            await self._send_error(unique_id, error)

    async def _send_error(
        self, unique_id: str, error: OCPPError | None, code: str | None = None
    ) -> None:
        if error is None:
            frame = [MessageType.CallError, unique_id, "InternalError",
                     "An unexpected error occurred.", {}]
        else:
            frame = [MessageType.CallError, unique_id, code or error.code,
                     error.description, {"cause": _cause(error)}]
        await self._send(dumps(frame))

    async def _send(self, message: str) -> None:
        if self._log_frames:
            self.log.debug("frame_out", frame=message)
        await self._connection.send(message)


def _cause(error: OCPPError) -> str:
    details = error.details if isinstance(error.details, dict) else {}
    cause = details.get("cause")
    return str(cause) if cause is not None else str(error.description)
