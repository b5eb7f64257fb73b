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
  like any other CALL;
- a per-connection message rate (``[limits]``, :mod:`csms.security.limits`) checked before a
  frame is parsed: over it a CALL gets a CALLERROR ``GenericError`` and, after sustained abuse,
  the connection is closed with 1008 (policy violation).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import uuid
from time import monotonic
from typing import TYPE_CHECKING, Any, ClassVar

import structlog
from ocpp.charge_point import ChargePoint, _raise_key_error
from ocpp.exceptions import (
    FormatViolationError,
    GenericError,
    OCPPError,
    ProtocolError,
    TypeConstraintViolationError,
)
from ocpp.messages import Call, CallError, CallResult, MessageType
from ocpp.routing import create_route_map
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode

from csms.logs import get_logger
from csms.protocol.failures import failure_log
from csms.protocol.integers import out_of_range
from csms.protocol.keys import dumps, loads, payload_from_dataclass, to_snake
from csms.protocol.ports import StationBackend
from csms.protocol.validation import REAL_WORLD_TOLERANCE, PayloadValidator
from csms.security.limits import MessageRateLimit, TokenBucket

if TYPE_CHECKING:
    from csms.metrics.limits import LimitMeter
    from csms.metrics.ocpp import OcppMeter

_HEAD_PATTERN = re.compile(r'\s*\[\s*(\d{1,3})\s*,\s*"((?:[^"\\]|\\.){1,64})"')
"""MessageTypeId and MessageId of a frame, read without parsing the rest (rate refusals)."""
_HEAD_LENGTH = 160
_ANSWER_TYPES = ("3", "4")
ABUSE_CLOSE_REASON = "message rate limit exceeded"
_WIDE_NUMBER = re.compile(r"\d{10}")
"""Ten digits in a row: perhaps an integer beyond 32 bits (its fields are then checked)."""
MAX_DEPTH = 32
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
"""A ``\\uD800``-``\\uDFFF`` escape: perhaps an unpaired surrogate (the frame is then checked)."""
"""Deepest nesting of arrays and objects accepted in a frame (FormatViolation beyond)."""
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
        rate_limit: MessageRateLimit | None = None,
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
        # Abuse limits: a token bucket checked before each frame is parsed (a few hundred ns).
        self._limits: LimitMeter | None = metrics.limits if metrics is not None else None
        self._rate_limit = rate_limit
        now = monotonic()
        self._rate: TokenBucket | None = rate_limit.messages(now) if rate_limit else None
        self._strikes: TokenBucket | None = rate_limit.refusals(now) if rate_limit else None
        self._rate_refusals = 0
        self._abusive = False

    @property
    def version(self) -> str:
        """The OCPP version this session speaks (``1.6`` or ``2.0.1``)."""
        return self._ocpp_version

    async def start(self) -> None:
        """Read and handle frames until the connection closes."""
        try:
            async for raw in self._connection:
                await self.route_message(raw)
        except ConnectionClosed as closed:
            if closed.sent is not None and closed.sent.code == CloseCode.MESSAGE_TOO_BIG:
                self._message_too_big(closed.sent.reason)
        finally:
            self._closed = True
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(StationOffline("connection closed"))
            for task in list(self._tasks):
                task.cancel()

    async def route_message(self, raw_msg: str | bytes) -> None:
        """Handle one frame: a CALL gets exactly one answer; answers go to their CALL."""
        rate = self._rate
        if rate is not None and not rate.take(monotonic()) and await self._over_rate(raw_msg):
            return
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
        except (ValueError, RecursionError):  # nested too deeply for the parser: not JSON
            await self._refuse_unreadable(
                raw_msg, FormatViolationError(details={"cause": "frame is not valid JSON"})
            )
            return
        readable = _message_id(frame)
        if _too_deep(raw_msg, frame):
            await self._refuse_unreadable(raw_msg, FormatViolationError(details={
                "cause": f"frame nested deeper than {MAX_DEPTH} levels"}), readable)
            return
        if _SURROGATE_ESCAPE.search(raw_msg) is not None and _lone_surrogate(frame):
            await self._refuse_unreadable(raw_msg, FormatViolationError(details={
                "cause": "text with an unpaired UTF-16 surrogate escape (not Unicode)"}),
                readable)
            return
        if not isinstance(frame, list) or len(frame) < 3 or type(frame[0]) is not int:
            await self._refuse_unreadable(
                raw_msg,
                ProtocolError(details={"cause": "an OCPP-J frame is a JSON array "
                                       "[MessageTypeId, MessageId, ...]"}),
                readable,
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
                await self._on_call_frame(frame, unique_id, raw_msg)
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

    async def _on_call_frame(self, frame: list[Any], unique_id: str, raw: str) -> None:
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
            answer = await self._handle_call(call, wide=_WIDE_NUMBER.search(raw) is not None)
        except OCPPError as error:
            self.log.warning(
                "call_refused", action=call.action, code=error.code, cause=_cause(error),
                message_id=unique_id,
            )
            await self._send_error(unique_id, error)
            if meter is not None:
                meter.refused(started)
            return
        except Exception as exc:
            failure_log.report(self.log, exc, action=call.action, message_id=unique_id)
            await self._send_error(unique_id, None)
            if meter is not None:
                meter.refused(started)
            return
        await self._send(answer)
        if meter is not None:
            meter.answered(started)

    async def _handle_call(self, msg: Call, *, wide: bool = False) -> str:
        """Validate, dispatch to the ``@on`` handler, validate and serialise its answer;
        ``wide``: the frame has a number of ten digits or more, check the integers' range."""
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
        if wide:
            field = out_of_range(self._ocpp_version, msg.action, msg.payload)
            if field is not None:
                raise TypeConstraintViolationError(
                    details={"cause": f"{field} is not a 32-bit integer (OCPP integer)"})
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

    async def _over_rate(self, raw: str | bytes) -> bool:
        """A frame over the message rate: ``False`` (handle it) for an answer to one of our
        CALLs, which is never refused; else the frame is refused (``True``): counted, logged
        (the 1st, 10th, 100th... refusal), a CALL answered with a CALLERROR ``GenericError``
        (OCPP-J has no rate-limit code; 1.6 §4.2.3, 2.0.1 Part 4 §4.2.3), and after
        ``refusals_before_close`` refusals within ``refusal_window`` s the connection is closed
        with 1008 (policy violation)."""
        if self._abusive:
            return True  # closing: frames still buffered are dropped
        head = raw[:_HEAD_LENGTH]
        text = head.decode("utf-8", "replace") if isinstance(head, bytes) else head
        match = _HEAD_PATTERN.match(text)
        unique_id = _unescape(match.group(2)) if match is not None else None
        is_answer = match is not None and match.group(1) in _ANSWER_TYPES
        if is_answer and unique_id in self._pending:
            return False
        self._rate_refusals += 1
        count = self._rate_refusals
        if self._limits is not None:
            self._limits.refused("ocpp_message_rate")
        limit = self._rate_limit
        per_second = limit.per_second if limit is not None else 0.0
        if _power_of_ten(count):
            self.log.warning("ocpp_rate_limited", refused=count, limit_per_second=per_second,
                             message_id=unique_id)
        if unique_id is not None and not is_answer:
            await self._send_error(unique_id, GenericError(
                description="Too many messages",
                details={"cause": f"rate limit of {per_second:g} messages per second; "
                                  "send one CALL at a time and retry later"},
            ))
        strikes = self._strikes
        if strikes is not None and not strikes.take(monotonic()):
            self._close_for_abuse()
        return True

    def _close_for_abuse(self) -> None:
        """Sustained flooding: close with 1008 (policy violation), logged and counted.

        The close runs beside the read loop, which drops the frames still buffered: awaited
        here, it would wait for the charger's close frame behind them (reading is paused while
        the buffer is full) until the close timeout."""
        self._abusive = True
        self._rate = TokenBucket(0.0, 0.0, 0.0)  # every frame still buffered is dropped
        if self._limits is not None:
            self._limits.refused("ocpp_abuse_close")
        limit = self._rate_limit
        self.log.warning(
            "ocpp_abuse_closed", refused=self._rate_refusals,
            refusals_before_close=limit.refusals_before_close if limit else None,
            refusal_window=limit.refusal_window if limit else None,
        )
        self.spawn(self._connection.close(CloseCode.POLICY_VIOLATION, ABUSE_CLOSE_REASON))

    def _message_too_big(self, reason: str) -> None:
        """The websocket layer closed the connection with 1009 (``ocpp.max_message_size``)."""
        if self._limits is not None:
            self._limits.refused("ocpp_message_size")
        self.log.warning("ocpp_message_too_big", detail=reason)

    async def _refuse_unreadable(
        self, raw: str, error: OCPPError, readable: str | None = None
    ) -> None:
        """A CALLERROR for a frame that cannot be handled, with its MessageId: ``readable``
        (from the parsed frame), else read from the text, else ``-1`` (2.0.1) or none (1.6:
        the frame is only logged)."""
        if self._meter is not None:
            self._meter.malformed += 1
        match = _ID_PATTERN.match(raw) if raw and readable is None else None
        unique_id = readable or (_unescape(match.group(1)) if match else self.unreadable_id)
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


def _message_id(frame: Any) -> str | None:
    """The MessageId of a parsed frame when it has a valid one (a string of 1 to 36)."""
    if isinstance(frame, list) and len(frame) > 1:
        unique_id = frame[1]
        if isinstance(unique_id, str) and 0 < len(unique_id) <= 36:
            return unique_id
    return None


def _lone_surrogate(frame: Any) -> bool:
    """Whether a parsed frame holds text that is not Unicode (an unpaired surrogate, which
    JSON escapes allow but no database or UTF-8 encoder takes)."""
    try:
        json.dumps(frame, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return True
    return False


def _too_deep(raw: str, frame: Any) -> bool:
    """Whether ``frame`` nests arrays and objects deeper than :data:`MAX_DEPTH` (the OCPP
    schemas stay under 10 levels; deeper input would exhaust the recursion of the schema
    validators and handlers). Walked only when the text has that many brackets at all."""
    if raw.count("[") + raw.count("{") <= MAX_DEPTH:
        return False
    stack: list[tuple[Any, int]] = [(frame, 1)]
    while stack:
        value, level = stack.pop()
        if level > MAX_DEPTH:
            return True
        if isinstance(value, dict):
            stack.extend((item, level + 1) for item in value.values())
        elif isinstance(value, list):
            stack.extend((item, level + 1) for item in value)
    return False


def _unescape(message_id: str) -> str:
    """A MessageId as read by :data:`_HEAD_PATTERN` (JSON string content), unescaped."""
    if "\\" not in message_id:
        return message_id
    try:
        value = json.loads(f'"{message_id}"')
    except ValueError:
        return message_id
    return value if isinstance(value, str) else message_id


def _power_of_ten(count: int) -> bool:
    while count >= 10 and count % 10 == 0:
        count //= 10
    return count == 1


def _cause(error: OCPPError) -> str:
    details = error.details if isinstance(error.details, dict) else {}
    cause = details.get("cause")
    return str(cause) if cause is not None else str(error.description)
