"""Type-directed conversion between the engine's dataclasses and JSON-compatible values.

``encode(tp, value)`` and ``decode(tp, data)`` follow the declared types: datetimes become ISO
strings, timedeltas seconds, enums their values, tuples and sets lists, dict keys strings.
A value of a union of several dataclasses (a ``StationCommand``) carries its class name in
``"type"``. Only the types the engine persists are supported; anything else is a TypeError.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import orjson

_HINTS: dict[type, tuple[tuple[str, Any], ...]] = {}
_NONE = type(None)
_TAG = "type"


def _fields(cls: type) -> tuple[tuple[str, Any], ...]:
    found = _HINTS.get(cls)
    if found is None:
        hints = typing.get_type_hints(cls)
        found = tuple((f.name, hints[f.name]) for f in dataclasses.fields(cls) if f.init)
        _HINTS[cls] = found
    return found


def _union_args(tp: Any) -> tuple[Any, ...] | None:
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        return typing.get_args(tp)
    return None


def encode(tp: Any, value: Any) -> Any:
    """``value`` (of declared type ``tp``) as JSON-compatible data."""
    if value is None:
        return None
    args = _union_args(tp)
    if args is not None:
        members = [a for a in args if a is not _NONE]
        if len(members) == 1:
            return encode(members[0], value)
        cls = type(value)
        if dataclasses.is_dataclass(cls):
            data = encode(cls, value)
            data[_TAG] = cls.__name__
            return data
        return encode(cls, value)
    if tp is Any:
        return value
    origin = typing.get_origin(tp)
    if origin is not None:
        params = typing.get_args(tp)
        if origin in (list, tuple, set, frozenset):
            if origin is tuple and not (len(params) == 2 and params[1] is Ellipsis):
                return [encode(p, v) for p, v in zip(params, value, strict=True)]
            item = params[0] if params else Any
            return [encode(item, v) for v in value]
        if origin in (dict, Mapping) or origin is typing.get_origin(Mapping[str, int]):
            value_tp = params[1]
            return {_encode_key(k): encode(value_tp, v) for k, v in value.items()}
        raise TypeError(f"cannot encode {tp!r}")
    if isinstance(tp, type):
        if issubclass(tp, enum.Enum):
            return value.value
        if tp is datetime:
            return value.isoformat()
        if tp is timedelta:
            return value.total_seconds()
        if dataclasses.is_dataclass(tp):
            return {name: encode(hint, getattr(value, name)) for name, hint in _fields(tp)}
        if tp in (str, int, float, bool):
            return value
    raise TypeError(f"cannot encode {tp!r}")


def dumps(tp: type, value: Any) -> bytes:
    """``encode(tp, value)`` as JSON bytes, done by orjson (10-20x faster on a large state).

    Same document as ``json.dumps(encode(tp, value))``, with one allowed difference: a
    dataclass that is a member of a union of several dataclasses somewhere under ``tp``
    carries its ``"type"`` tag wherever it appears (:func:`decode` ignores unknown keys).
    """
    return orjson.dumps(value, default=_default_for(tp),
                        option=orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_NON_STR_KEYS)


_DEFAULTS: dict[Any, Callable[[Any], Any]] = {}


def _default_for(tp: type) -> Callable[[Any], Any]:
    found = _DEFAULTS.get(tp)
    if found is not None:
        return found
    tagged: set[type] = set()
    _collect_tagged(tp, tagged, set())
    shapes: dict[type, tuple[tuple[str, ...], str | None]] = {}

    def default(obj: Any) -> Any:
        cls = type(obj)
        shape = shapes.get(cls)
        if shape is None:
            if not dataclasses.is_dataclass(cls):
                if cls is timedelta:
                    return obj.total_seconds()
                if isinstance(obj, (set, frozenset)):
                    return list(obj)
                raise TypeError(f"cannot encode {cls!r}")
            shape = (tuple(name for name, _ in _fields(cls)),
                     cls.__name__ if cls in tagged else None)
            shapes[cls] = shape
        names, tag = shape
        data = {name: getattr(obj, name) for name in names}
        if tag is not None:
            data[_TAG] = tag
        return data

    _DEFAULTS[tp] = default
    return default


def _collect_tagged(tp: Any, tagged: set[type], seen: set[type]) -> None:
    """The dataclasses that :func:`encode` tags: members of unions of several dataclasses."""
    args = _union_args(tp)
    if args is not None:
        members = [a for a in args if a is not _NONE]
        if len(members) > 1:
            tagged.update(m for m in members if isinstance(m, type) and dataclasses.is_dataclass(m))
        for member in members:
            _collect_tagged(member, tagged, seen)
        return
    if typing.get_origin(tp) is not None:
        for param in typing.get_args(tp):
            if param is not Ellipsis:
                _collect_tagged(param, tagged, seen)
        return
    if isinstance(tp, type) and dataclasses.is_dataclass(tp) and tp not in seen:
        seen.add(tp)
        for _, hint in _fields(tp):
            _collect_tagged(hint, tagged, seen)


def _encode_key(key: Any) -> str:
    if isinstance(key, enum.Enum):
        return str(key.value)
    return str(key)


def decode(tp: Any, data: Any) -> Any:
    """Data produced by :func:`encode` back as a value of type ``tp``."""
    if data is None:
        return None
    args = _union_args(tp)
    if args is not None:
        members = [a for a in args if a is not _NONE]
        if len(members) == 1:
            return decode(members[0], data)
        if isinstance(data, dict) and _TAG in data:
            for member in members:
                if isinstance(member, type) and member.__name__ == data[_TAG]:
                    return decode(member, {k: v for k, v in data.items() if k != _TAG})
            raise TypeError(f"unknown {_TAG} {data[_TAG]!r} for {tp!r}")
        for member in members:
            if member in (str, int, float, bool) and isinstance(data, member):
                return data
        raise TypeError(f"cannot decode {data!r} as {tp!r}")
    if tp is Any:
        return data
    origin = typing.get_origin(tp)
    if origin is not None:
        params = typing.get_args(tp)
        if origin is list:
            return [decode(params[0], v) for v in data]
        if origin is tuple:
            if len(params) == 2 and params[1] is Ellipsis:
                return tuple(decode(params[0], v) for v in data)
            return tuple(decode(p, v) for p, v in zip(params, data, strict=True))
        if origin in (set, frozenset):
            return origin(decode(params[0], v) for v in data)
        key_tp, value_tp = params
        return {_decode_key(key_tp, k): decode(value_tp, v) for k, v in data.items()}
    if isinstance(tp, type):
        if issubclass(tp, enum.Enum):
            return tp(data)
        if tp is datetime:
            return datetime.fromisoformat(data)
        if tp is timedelta:
            return timedelta(seconds=data)
        if dataclasses.is_dataclass(tp):
            kwargs = {name: decode(hint, data[name]) for name, hint in _fields(tp) if name in data}
            return tp(**kwargs)
        if tp is float:
            return float(data)
        if tp in (str, int, bool):
            return data
    raise TypeError(f"cannot decode {tp!r}")


def _decode_key(key_tp: Any, key: str) -> Any:
    if key_tp is int:
        return int(key)
    if isinstance(key_tp, type) and issubclass(key_tp, enum.Enum):
        return key_tp(key)
    return key
