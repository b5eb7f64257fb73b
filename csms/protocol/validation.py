"""Synchronous, compiled OCPP payload validation with the ``ocpp`` library's verdicts.

The ``ocpp`` library validates every payload with :class:`jsonschema.Draft4Validator` in the
default thread pool. :class:`PayloadValidator` validates the same payloads against the same
schema files (those shipped inside the ``ocpp`` package) with validators compiled by
``fastjsonschema``, on the calling thread:

* the fast validator accepts → the payload is valid, nothing else runs;
* the fast validator rejects → the library's own validator is consulted and *its* verdict
  decides: no library error → accepted; only tolerated deviations → accepted and the
  deviations are returned; anything else → the exception that
  ``ocpp.messages._validate_payload`` raises (same class, code, description and details).
  One refinement: the library reports its *first* schema error; when that one is tolerated
  but a later one is not, the exception is the library's mapping of the first untolerated
  error (a missing field next to a tolerated ``errorCode: "Error"`` is a ``ProtocolError``).

How the fast validators are kept equivalent to the library's ``Draft4Validator``:

* every schema is compiled as draft-04 whatever its ``$schema`` says (the 2.0.1 files and
  some 1.6 files declare draft-06; the library reads them with ``Draft4Validator``, so e.g.
  ``1.0`` is *not* an integer);
* ``use_formats=False``: the library has no format checker, ``format`` is an annotation;
* ``use_default=False``: payloads are never mutated;
* remote ``$ref`` resolution is refused (all OCPP references are local).

The three OCPP 1.6 schemas the library validates with :class:`decimal.Decimal` floats
(``SetChargingProfile`` and ``RemoteStartTransaction`` requests, the ``GetCompositeSchedule``
response) are simply delegated to the library's synchronous ``_validate_payload``, which (as
in the library) replaces ``message.payload`` by a copy whose floats are ``Decimal``.

Known divergence: ``fastjsonschema`` accepts a Python ``tuple`` where the schema asks for an
``array``; ``Draft4Validator`` does not. Payloads decoded from JSON never contain tuples.

Tolerance
---------
Real chargers send non-conformant values (``errorCode: "Error"``, over-long vendor info...).
A *tolerance* is a set of paths; a library error whose keyword is ``enum`` or ``maxLength``
and whose instance path is in the set is reported as a deviation instead of rejecting the
message. Path syntax, relative to the payload root:

* object members are joined with ``.``: ``"chargingStation.firmwareVersion"``;
* each array level is written ``[]`` right after the array's name and matches any index:
  ``"eventData[].techInfo"``; an array of arrays is ``"values[][]"``.

:data:`REAL_WORLD_TOLERANCE` holds the tolerances for requests sent by chargers.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any, Final

import fastjsonschema
import ocpp.messages
from ocpp.exceptions import (
    FormatViolationError,
    OCPPError,
    ProtocolError,
    TypeConstraintViolationError,
)
from ocpp.messages import Call, CallResult, MessageType, _validate_payload, get_validator

__all__ = [
    "REAL_WORLD_TOLERANCE",
    "SUPPORTED_VERSIONS",
    "PayloadValidator",
    "format_path",
    "schema_names",
    "tolerance_for",
]

#: OCPP versions handled here, mapped to the ``ocpp`` package's schema folder.
SUPPORTED_VERSIONS: Final[Mapping[str, str]] = {"1.6": "v16", "2.0.1": "v201"}

#: Keywords whose errors may be tolerated.
TOLERABLE_KEYWORDS: Final = frozenset({"enum", "maxLength"})

_NO_TOLERANCE: Final[frozenset[str]] = frozenset()

#: Tolerated paths for requests *from chargers*, keyed by ``(ocpp_version, action)``.
REAL_WORLD_TOLERANCE: Final[dict[tuple[str, str], frozenset[str]]] = {
    ("1.6", "StatusNotification"): frozenset(
        {"errorCode", "status", "info", "vendorErrorCode", "vendorId"}
    ),
    ("1.6", "DiagnosticsStatusNotification"): frozenset({"status"}),
    ("1.6", "FirmwareStatusNotification"): frozenset({"status"}),
    ("1.6", "LogStatusNotification"): frozenset({"status"}),
    ("2.0.1", "StatusNotification"): frozenset({"connectorStatus"}),
    ("2.0.1", "LogStatusNotification"): frozenset({"status"}),
    ("2.0.1", "NotifyEvent"): frozenset(
        {"eventData[].techInfo", "eventData[].techCode", "eventData[].actualValue"}
    ),
    ("2.0.1", "FirmwareStatusNotification"): frozenset({"status"}),
}

# (message type, action) pairs the library validates with Decimal floats (OCPP 1.6 only).
_DECIMAL_KEYS: Final = frozenset(
    {
        (MessageType.Call, "SetChargingProfile"),
        (MessageType.Call, "RemoteStartTransaction"),
        (MessageType.CallResult, "GetCompositeSchedule"),
    }
)

_DRAFT4: Final = "http://json-schema.org/draft-04/schema#"
_SCHEMA_ROOT: Final = os.path.dirname(os.path.realpath(ocpp.messages.__file__))
_MAX_SHOWN: Final = 60

_FastValidator = Callable[[Any], Any]


def tolerance_for(version: str, action: str) -> frozenset[str]:
    """The :data:`REAL_WORLD_TOLERANCE` entry for a charger's request (empty if none)."""
    return REAL_WORLD_TOLERANCE.get((version, action), _NO_TOLERANCE)


def format_path(path: Iterable[str | int]) -> str:
    """Render a jsonschema instance path (``deque(['eventData', 0, 'techInfo'])``) in the
    tolerance syntax (``"eventData[].techInfo"``)."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += "[]"
        else:
            out = f"{out}.{part}" if out else part
    return out


def schema_names(version: str) -> frozenset[str]:
    """Names (file stems) of the schemas the ``ocpp`` package ships for ``version``."""
    return _state_for(version).names


class _NoRemoteRefs(dict[str, Callable[[str], Any]]):
    """``fastjsonschema`` handlers that refuse every remote ``$ref`` (instead of urlopen)."""

    def __contains__(self, scheme: object) -> bool:
        return True

    def __missing__(self, scheme: str) -> Callable[[str], Any]:
        def refuse(uri: str) -> Any:
            raise ValueError(f"remote $ref refused: {uri}")

        return refuse


_Compiled = _FastValidator | None  # None: delegate to the library (Decimal schemas)


class _VersionState:
    """Per-process, per-version cache of compiled validators."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.directory = os.path.join(_SCHEMA_ROOT, SUPPORTED_VERSIONS[version], "schemas")
        self.names = frozenset(
            entry[:-5] for entry in os.listdir(self.directory) if entry.endswith(".json")
        )
        self.compiled: dict[tuple[int, str], _Compiled] = {}
        self.lock = threading.Lock()

    def schema_name(self, kind: int, action: str) -> str:
        # Same naming as ocpp.messages.get_validator.
        if kind == MessageType.CallResult:
            return action + "Response"
        if self.version != "1.6":
            return action + "Request"
        return action

    def has_schema(self, kind: int, action: str) -> bool:
        return self.schema_name(kind, action) in self.names

    def load(self, kind: int, action: str) -> _Compiled:
        """The compiled validator, or ``None`` to delegate to the library. Only call this
        when :meth:`has_schema` (only actions with a schema file are cached: actions come
        from the wire)."""
        key = (kind, action)
        with self.lock:
            if key in self.compiled:
                return self.compiled[key]
            name = self.schema_name(kind, action)
            compiled: _Compiled
            if self.version == "1.6" and key in _DECIMAL_KEYS:
                compiled = None
            else:
                compiled = self._compile(name)
            self.compiled[key] = compiled
            return compiled

    def _compile(self, name: str) -> _FastValidator:
        path = os.path.join(self.directory, name + ".json")
        with open(path, encoding="utf-8-sig") as handle:  # BOM-tolerant, like the library
            schema = json.loads(handle.read())
        schema["$schema"] = _DRAFT4  # the library uses Draft4Validator for every file
        validator: _FastValidator = fastjsonschema.compile(
            schema,
            handlers=_NoRemoteRefs(),
            use_default=False,
            use_formats=False,
            detailed_exceptions=False,
        )
        return validator


_STATES: dict[str, _VersionState] = {}
_STATES_LOCK = threading.Lock()


def _state_for(version: str) -> _VersionState:
    try:
        return _STATES[version]
    except KeyError:
        pass
    if version not in SUPPORTED_VERSIONS:
        raise ValueError(
            f"unsupported OCPP version {version!r}; use one of {list(SUPPORTED_VERSIONS)}"
        )
    with _STATES_LOCK:
        state = _STATES.get(version)
        if state is None:
            state = _STATES[version] = _VersionState(version)
        return state


def _shorten(value: Any) -> str:
    text = repr(value)
    if len(text) > _MAX_SHOWN:
        text = text[: _MAX_SHOWN - 3] + "..."
    return text


def _describe(path: str, keyword: str, instance: Any, limit: Any) -> str:
    if keyword == "maxLength":
        return f"{path}: {len(instance)} characters exceed maxLength {limit} (tolerated)"
    return f"{path}: {_shorten(instance)} is not an allowed value (tolerated enum)"


class PayloadValidator:
    """Validates ``Call``/``CallResult`` payloads of one OCPP version.

    Instances are cheap and thread-safe; compiled validators are shared by every instance of
    the process and compiled lazily on first use (see :meth:`warm_up`).
    """

    __slots__ = ("_compiled", "_state", "version")

    def __init__(self, version: str) -> None:
        self._state = _state_for(version)
        self._compiled = self._state.compiled
        self.version = version

    def validate(
        self, message: Call | CallResult, *, tolerate: frozenset[str] = _NO_TOLERANCE
    ) -> tuple[str, ...]:
        """Validate ``message.payload`` against the schema of ``message.action``.

        Returns ``()`` when the payload is valid, or descriptions of the tolerated deviations
        when every schema error is tolerated by ``tolerate`` (see the module docstring for the
        path syntax). Otherwise raises the :class:`ocpp.exceptions.OCPPError` subclass (or
        other exception) that ``ocpp.messages._validate_payload`` raises for this message.
        """
        cls = type(message)
        if cls is Call:
            kind = MessageType.Call
        elif cls is CallResult:
            kind = MessageType.CallResult
        else:
            _validate_payload(message, self.version)  # raises the library's ValidationError
            return ()
        action = message.action
        if type(action) is not str:
            _validate_payload(message, self.version)  # the library's verdict (an exception)
            return ()
        try:
            fast = self._compiled[(kind, action)]
        except KeyError:
            if not self._state.has_schema(kind, action):
                _validate_payload(message, self.version)  # NotImplementedError: no schema
                return ()
            fast = self._state.load(kind, action)
        if fast is None:
            return self._delegate(message, kind, action, tolerate)
        try:
            fast(message.payload)
        except Exception:  # any fast-path failure defers to the library's verdict
            return self._consult_library(message, kind, action, tolerate)
        return ()

    def _consult_library(
        self, message: Call | CallResult, kind: int, action: str, tolerate: frozenset[str]
    ) -> tuple[str, ...]:
        validator = get_validator(kind, action, self.version)
        errors = list(validator.iter_errors(message.payload))
        if not errors:
            return ()
        deviations = _tolerated(errors, tolerate)
        if deviations is not None:
            return deviations
        _raise_verdict(message, self.version, errors, tolerate)
        return ()  # pragma: no cover - _raise_verdict always raises

    def _delegate(
        self, message: Call | CallResult, kind: int, action: str, tolerate: frozenset[str]
    ) -> tuple[str, ...]:
        try:
            _validate_payload(message, self.version)
        except OCPPError:
            if not tolerate:
                raise
            # The library has replaced the payload by its Decimal copy; always ask for the
            # Decimal validator so the library's cache is never filled with a float one.
            validator = get_validator(kind, action, self.version, parse_float=Decimal)
            errors = list(validator.iter_errors(message.payload))
            deviations = _tolerated(errors, tolerate)
            if deviations is not None:
                return deviations
            if not errors or not _is_tolerated(errors[0], tolerate):
                raise
            raise _library_exception(_first_untolerated(errors, tolerate), message) from None
        return ()

    def is_compiled(self, kind: int, action: str) -> bool:
        """Whether the validator for ``(kind, action)`` is already compiled (or delegated)."""
        return (kind, action) in self._compiled

    def warm_up(self, actions: Iterable[str] | None = None) -> int:
        """Compile the request and response validators of ``actions`` (all actions of the
        version when ``None``) now rather than on first use. Unknown actions are ignored.
        Returns how many (message type, action) validators are ready."""
        if actions is None:
            actions = {
                name.removesuffix("Response").removesuffix("Request") for name in self._state.names
            }
        ready = 0
        for action in actions:
            for kind in (MessageType.Call, MessageType.CallResult):
                if self._state.has_schema(kind, action):
                    self._state.load(kind, action)
                    ready += 1
        return ready


def _is_tolerated(error: Any, tolerate: frozenset[str]) -> bool:
    return error.validator in TOLERABLE_KEYWORDS and format_path(error.absolute_path) in tolerate


def _tolerated(errors: list[Any], tolerate: frozenset[str]) -> tuple[str, ...] | None:
    """Descriptions of ``errors`` when every one is tolerated, else ``None``."""
    if not errors or not tolerate:
        return None
    deviations: list[str] = []
    for error in errors:
        if not _is_tolerated(error, tolerate):
            return None
        path = format_path(error.absolute_path)
        deviations.append(_describe(path, error.validator, error.instance, error.validator_value))
    return tuple(deviations)


def _first_untolerated(errors: list[Any], tolerate: frozenset[str]) -> Any:
    return next(error for error in errors if not _is_tolerated(error, tolerate))


def _raise_verdict(
    message: Call | CallResult, version: str, errors: list[Any], tolerate: frozenset[str]
) -> None:
    """Raise the library's verdict for a payload with at least one untolerated error.

    The library reports the *first* schema error. When that one is tolerated, the verdict is
    the one the library gives for the first untolerated error (e.g. ``ProtocolError`` for a
    missing field next to a tolerated ``errorCode: "Error"``), so a tolerated deviation never
    hides the real reason for the rejection.
    """
    if tolerate and _is_tolerated(errors[0], tolerate):
        raise _library_exception(_first_untolerated(errors, tolerate), message)
    _validate_payload(message, version)  # the library's own verdict


def _library_exception(error: Any, message: Call | CallResult) -> OCPPError:
    """``ocpp.messages._validate_payload``'s mapping of one jsonschema error (ocpp 2.1.0)."""
    keyword = error.validator
    if keyword in ("type", "maxLength"):
        return TypeConstraintViolationError(
            details={"cause": error.message, "ocpp_message": message}
        )
    if keyword == "additionalProperties":
        return FormatViolationError(details={"cause": error.message, "ocpp_message": message})
    if keyword == "required":
        return ProtocolError(details={"cause": error.message})
    return FormatViolationError(
        details={
            "cause": f"Payload '{message.payload}' for action "
            f"'{message.action}' is not valid: {error}",
            "ocpp_message": message,
        }
    )
