"""Fast payload key conversion and JSON framing, equal to the ``ocpp`` library's output.

* :func:`to_snake` / :func:`to_camel` return exactly what ``ocpp.charge_point``'s
  ``camel_to_snake_case`` / ``snake_to_camel_case`` return. Each distinct key is converted
  once *by the library's own function* and remembered in a bounded cache (keys come from the
  wire, so the cache stops growing at :data:`KEY_CACHE_SIZE` entries per direction).
* :func:`payload_from_dataclass` equals
  ``snake_to_camel_case(remove_nones(serialize_as_dict(obj)))`` without ``asdict``'s deep
  copies, except that enum members become their plain values (the library's enums are
  ``str`` subclasses, so the JSON is the same). Values of other types are not copied. One
  deliberate difference: ``serialize_as_dict`` puts the *original* items of a list field
  back, so a dataclass nested in a list/dict/tuple *inside a list* stays a dataclass (which
  ``to_json()`` cannot encode); here it is converted like any other. No ``ocpp`` payload
  type has such a field.
* :func:`dumps` / :func:`loads` use ``orjson`` and fall back to the standard library whenever
  ``orjson`` would differ from the library's ``to_json()`` / ``json.loads`` (non-ASCII text
  and DEL, floats below 1e-4, NaN/Infinity, integers outside 64 bits, non-string keys,
  objects with ``to_json()``...). Only types ``json`` refuses but ``orjson`` encodes natively
  (``uuid.UUID``, numpy arrays) are encoded where the library would raise ``TypeError``.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from decimal import Decimal
from enum import Enum
from typing import Any, Final

import orjson
from ocpp.charge_point import camel_to_snake_case, snake_to_camel_case
from ocpp.messages import Call, CallError, CallResult, _DecimalEncoder

__all__ = [
    "KEY_CACHE_SIZE",
    "camel_key",
    "dumps",
    "frame_of",
    "loads",
    "payload_from_dataclass",
    "snake_key",
    "to_camel",
    "to_snake",
]

#: Maximum number of remembered key conversions per direction.
KEY_CACHE_SIZE: Final = 4096

_SCALARS: Final = frozenset({str, int, float, bool, type(None)})


def _key_converter(convert: Callable[[Any], Any]) -> tuple[Callable[[str], str], dict[str, str]]:
    cache: dict[str, str] = {}

    def key(name: str) -> str:
        try:
            return cache[name]
        except KeyError:
            pass
        # The library's own function, on a one-key dict: identical result by construction.
        converted: str = next(iter(convert({name: None})))
        if len(cache) < KEY_CACHE_SIZE:
            cache[name] = converted
        return converted

    return key, cache


#: ``snake_key("chargePointVendor") == "charge_point_vendor"`` (cached library conversion).
snake_key, _SNAKE_CACHE = _key_converter(camel_to_snake_case)
#: ``camel_key("charge_point_vendor") == "chargePointVendor"`` (cached library conversion).
camel_key, _CAMEL_CACHE = _key_converter(snake_to_camel_case)


def _convert_dict(
    data: dict[Any, Any], cache: dict[str, str], key: Callable[[str], str]
) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for name, value in data.items():
        new_name = cache.get(name)
        if new_name is None:
            new_name = key(name)
        kind = type(value)
        if kind is dict:
            value = _convert_dict(value, cache, key)
        elif kind is list:
            value = _convert_list(value, cache, key)
        elif kind not in _SCALARS and isinstance(value, dict | list):
            value = _convert(value, cache, key)
        out[new_name] = value
    return out


def _convert_list(data: list[Any], cache: dict[str, str], key: Callable[[str], str]) -> list[Any]:
    out: list[Any] = []
    for value in data:
        kind = type(value)
        if kind is dict:
            value = _convert_dict(value, cache, key)
        elif kind is list:
            value = _convert_list(value, cache, key)
        elif kind not in _SCALARS and isinstance(value, dict | list):
            value = _convert(value, cache, key)
        out.append(value)
    return out


def _convert(data: Any, cache: dict[str, str], key: Callable[[str], str]) -> Any:
    if isinstance(data, dict):
        return _convert_dict(data, cache, key)
    if isinstance(data, list):
        return _convert_list(data, cache, key)
    return data


def to_snake(data: Any) -> Any:
    """``ocpp.charge_point.camel_to_snake_case(data)``, with cached key conversion."""
    return _convert(data, _SNAKE_CACHE, snake_key)


def to_camel(data: Any) -> Any:
    """``ocpp.charge_point.snake_to_camel_case(data)``, with cached key conversion."""
    return _convert(data, _CAMEL_CACHE, camel_key)


# --------------------------------------------------------------------------- dataclasses

_FIELDS: dict[type, tuple[tuple[str, str], ...]] = {}


def _fields_of(cls: type) -> tuple[tuple[str, str], ...]:
    try:
        return _FIELDS[cls]
    except KeyError:
        pass
    spec = tuple((field.name, camel_key(field.name)) for field in dataclasses.fields(cls))
    _FIELDS[cls] = spec  # bounded by the number of dataclasses in the program
    return spec


def _is_dataclass_instance(value: Any) -> bool:
    return hasattr(type(value), "__dataclass_fields__") and not isinstance(value, type)


def payload_from_dataclass(obj: Any) -> dict[str, Any]:
    """The camelCase payload of a payload dataclass, without ``None`` values.

    Equal to ``snake_to_camel_case(remove_nones(serialize_as_dict(obj)))``; enum members are
    replaced by their values. Raises :class:`TypeError` when ``obj`` is not a dataclass
    instance (as ``dataclasses.asdict`` does).
    """
    if not _is_dataclass_instance(obj):
        raise TypeError("payload_from_dataclass() should be called on dataclass instances")
    return _from_dataclass(obj)


def _from_dataclass(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, key in _fields_of(type(obj)):
        value = getattr(obj, name)
        if value is None:
            continue
        kind = type(value)
        if kind is not str and kind is not int and kind is not float and kind is not bool:
            value = _from_value(value)
        out[key] = value
    return out


def _from_value(value: Any) -> Any:
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool:
        return value
    if isinstance(value, Enum):
        return value.value
    if _is_dataclass_instance(value):
        return _from_dataclass(value)
    if isinstance(value, list):
        return [_from_value(item) for item in value if item is not None]
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for name, item in value.items():
            if item is not None:
                new_name = _CAMEL_CACHE.get(name)
                out[camel_key(name) if new_name is None else new_name] = _from_value(item)
        return out
    if isinstance(value, tuple):
        # asdict() rebuilds tuples; remove_nones and snake_to_camel_case leave them alone.
        return _as_plain(value)
    return value


def _as_plain(value: Any) -> Any:
    """What ``dataclasses.asdict`` makes of a value (no None removal, no key conversion)."""
    if _is_dataclass_instance(value):
        return {
            field.name: _as_plain(getattr(value, field.name)) for field in dataclasses.fields(value)
        }
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value)(*[_as_plain(item) for item in value])
    if isinstance(value, list | tuple):
        return type(value)(_as_plain(item) for item in value)
    if isinstance(value, dict):
        return type(value)((_as_plain(k), _as_plain(v)) for k, v in value.items())
    return value


# ------------------------------------------------------------------------------- framing

_OPTIONS: Final = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME
# Python writes floats below 1e-4 as 1e-05; orjson writes 0.00001 or 1e-5. A match (even
# inside a string) just sends the frame through the standard library.
_SMALL_FLOAT_EXPONENT: Final = re.compile(r"[\[,:]-?[0-9]+(?:\.[0-9]+)?e-")
# orjson decodes integers beyond 64 bits as floats, json.loads keeps them int: any run of 19+
# digits (found as zeros after mapping every digit to "0") goes to json.loads.
_DIGITS_TO_ZERO: Final = bytes.maketrans(b"0123456789", b"0000000000")
_LONG_DIGIT_RUN: Final = b"0" * 19


def _orjson_default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return float("%.1f" % obj)  # noqa: UP031 - the library's exact _DecimalEncoder rule
    raise TypeError  # anything else: the standard library path decides


def frame_of(message: Call | CallResult | CallError) -> list[Any]:
    """The JSON array of an OCPP message object, as its ``to_json()`` builds it."""
    if isinstance(message, Call):
        return [message.message_type_id, message.unique_id, message.action, message.payload]
    if isinstance(message, CallResult):
        return [message.message_type_id, message.unique_id, message.payload]
    if isinstance(message, CallError):
        return [
            message.message_type_id,
            message.unique_id,
            message.error_code,
            message.error_description,
            message.error_details,
        ]
    raise TypeError(f"not an OCPP message: {type(message).__name__}")


def _stdlib_dumps(frame: Any) -> str:
    return json.dumps(frame, separators=(",", ":"), cls=_DecimalEncoder)


def dumps(frame: Call | CallResult | CallError | list[Any] | tuple[Any, ...]) -> str:
    """Serialise an OCPP message object (or an already built frame list) to the exact text
    the library's ``to_json()`` produces."""
    data = frame if isinstance(frame, list | tuple) else frame_of(frame)
    try:
        text = orjson.dumps(data, default=_orjson_default, option=_OPTIONS).decode()
    except TypeError:
        return _stdlib_dumps(data)
    # json.dumps escapes everything outside " ".."~" (ensure_ascii), orjson only controls;
    # orjson writes NaN/Infinity as null and small floats differently.
    if (
        text.isascii()
        and "\x7f" not in text
        and "null" not in text
        and "0.0000" not in text
        and ("e-" not in text or _SMALL_FLOAT_EXPONENT.search(text) is None)
    ):
        return text
    return _stdlib_dumps(data)


def loads(text: str | bytes | bytearray) -> Any:
    """Parse a frame exactly like ``json.loads`` (what ``ocpp.messages.unpack`` uses) would,
    raising ``json.JSONDecodeError`` (or ``UnicodeDecodeError``) for invalid input."""
    try:
        raw = text.encode() if isinstance(text, str) else text
    except UnicodeEncodeError:  # lone surrogates: only json.loads accepts them
        return json.loads(text)
    if _LONG_DIGIT_RUN not in raw.translate(_DIGITS_TO_ZERO):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass  # NaN, Infinity, 1e400, UTF-16, BOM...: json.loads decides
    return json.loads(text)
