"""Parity of csms.protocol.keys with the ``ocpp`` library's conversions and framing."""

from __future__ import annotations

import dataclasses
import glob
import inspect
import json
import os
import typing
from decimal import Decimal
from enum import Enum
from types import ModuleType
from typing import Any

import ocpp.messages
import ocpp.v16.call
import ocpp.v16.call_result
import ocpp.v16.datatypes
import ocpp.v16.enums
import ocpp.v201.call
import ocpp.v201.call_result
import ocpp.v201.datatypes
import ocpp.v201.enums
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ocpp.charge_point import (
    camel_to_snake_case,
    remove_nones,
    serialize_as_dict,
    snake_to_camel_case,
)
from ocpp.messages import Call, CallError, CallResult

from csms.protocol import keys
from csms.protocol.keys import (
    KEY_CACHE_SIZE,
    camel_key,
    dumps,
    frame_of,
    loads,
    payload_from_dataclass,
    snake_key,
    to_camel,
    to_snake,
)

SETTINGS = settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

MODULES: list[ModuleType] = [
    ocpp.v16.call,
    ocpp.v16.call_result,
    ocpp.v16.datatypes,
    ocpp.v201.call,
    ocpp.v201.call_result,
    ocpp.v201.datatypes,
]
DATACLASSES: list[type] = [
    cls
    for module in MODULES
    for _, cls in inspect.getmembers(module, inspect.isclass)
    if dataclasses.is_dataclass(cls) and cls.__module__ == module.__name__
]
FIELD_NAMES = sorted({f.name for cls in DATACLASSES for f in dataclasses.fields(cls)})
ENUM_MEMBERS: list[Enum] = [
    member
    for module in (ocpp.v16.enums, ocpp.v201.enums)
    for _, cls in inspect.getmembers(module, inspect.isclass)
    if issubclass(cls, Enum) and cls.__module__ == module.__name__
    for member in cls
]


def _schema_property_names() -> list[str]:
    root = os.path.dirname(ocpp.messages.__file__)
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "properties":
                    found.update(value)
                    for sub in value.values():
                        walk(sub)
                elif key == "definitions":
                    for sub in value.values():
                        walk(sub)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for path in glob.glob(os.path.join(root, "v16", "schemas", "*.json")) + glob.glob(
        os.path.join(root, "v201", "schemas", "*.json")
    ):
        with open(path, encoding="utf-8-sig") as handle:
            walk(json.load(handle))
    return sorted(found)


CAMEL_NAMES = _schema_property_names()


def _library_key(convert: Any, name: str) -> str:
    return str(next(iter(convert({name: None}))))


# --------------------------------------------------------------------------- key parity


def test_inventory() -> None:
    assert len(DATACLASSES) > 250 and len(FIELD_NAMES) > 250 and len(CAMEL_NAMES) > 250


def test_every_dataclass_field_name_converts_like_library() -> None:
    for name in FIELD_NAMES:
        assert camel_key(name) == _library_key(snake_to_camel_case, name), name
        assert to_camel({name: 1}) == snake_to_camel_case({name: 1})
        camel = camel_key(name)
        assert snake_key(camel) == _library_key(camel_to_snake_case, camel), camel


def test_every_schema_property_name_converts_like_library() -> None:
    for name in CAMEL_NAMES:
        assert snake_key(name) == _library_key(camel_to_snake_case, name), name
        snake = snake_key(name)
        assert camel_key(snake) == _library_key(snake_to_camel_case, snake), snake


def test_round_trips() -> None:
    # Every schema property survives camel -> snake -> camel.
    for name in CAMEL_NAMES:
        assert to_camel(to_snake({name: 0})) == {name: 0}
    # Every field name survives snake -> camel -> snake, except where the library's own
    # conversion does not (it writes language_1 as "language1").
    broken = {name for name in FIELD_NAMES if to_snake(to_camel({name: 0})) != {name: 0}}
    assert broken == {"language_1", "language_2"}
    for name in broken:
        assert camel_to_snake_case(snake_to_camel_case({name: 0})) != {name: 0}


KEY_TEXT = st.one_of(
    st.sampled_from(FIELD_NAMES),
    st.sampled_from(CAMEL_NAMES),
    st.sampled_from(["ocppCSMSURL", "socLimitReached", "V2XChargingCtrlr", "evseId", "soc"]),
    st.text(alphabet="abcsoXVGUR_019SCMLzA", max_size=12),
    st.text(max_size=6),
)
JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=6),
    st.sampled_from(ENUM_MEMBERS),
)
NESTED = st.recursive(
    JSON_LEAVES,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(KEY_TEXT, children, max_size=4)
    ),
    max_leaves=20,
)


@SETTINGS
@given(NESTED)
def test_nested_conversion_matches_library(data: Any) -> None:
    assert to_snake(data) == camel_to_snake_case(data)
    assert to_camel(data) == snake_to_camel_case(data)
    assert json.dumps(to_snake(data)) == json.dumps(camel_to_snake_case(data))  # key order
    assert json.dumps(to_camel(data)) == json.dumps(snake_to_camel_case(data))


def test_conversion_copies_and_handles_subclasses() -> None:
    from collections import OrderedDict

    source = OrderedDict(chargePointVendor=[OrderedDict(meterValue=1)], plain=(1, {"aB": 2}))
    converted = to_snake(source)
    assert converted == camel_to_snake_case(source)
    assert type(converted) is dict and type(converted["charge_point_vendor"][0]) is dict
    assert converted["plain"] is source["plain"]  # tuples are left alone, like the library
    assert to_snake("text") == "text" and to_camel(5) == 5


def test_key_cache_is_bounded() -> None:
    names = [f"someKey{i}Value" for i in range(KEY_CACHE_SIZE + 50)]
    for name in names:
        assert snake_key(name) == _library_key(camel_to_snake_case, name)
    assert len(keys._SNAKE_CACHE) <= KEY_CACHE_SIZE
    assert to_snake({names[-1]: 1}) == camel_to_snake_case({names[-1]: 1})  # uncached path


# ---------------------------------------------------------------- payload_from_dataclass


def _json_value() -> st.SearchStrategy[Any]:
    return NESTED


_TYPE_STRATEGIES: dict[Any, st.SearchStrategy[Any]] = {}


def strategy_for_type(tp: Any) -> st.SearchStrategy[Any]:
    """Instances of a payload annotation (dataclasses, enums, Optional, List, Dict...)."""
    if tp in _TYPE_STRATEGIES:
        return _TYPE_STRATEGIES[tp]
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    strategy: st.SearchStrategy[Any]
    if tp is Any:
        strategy = _json_value()
    elif tp is type(None):
        strategy = st.none()
    elif dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        strategy = st.builds(
            typing.cast(Any, tp),
            **{f.name: strategy_for_type(hints[f.name]) for f in dataclasses.fields(tp)},
        )
    elif isinstance(tp, type) and issubclass(tp, Enum):
        strategy = st.sampled_from(list(tp))
    elif tp is str:
        strategy = st.text(max_size=8)
    elif tp is bool:
        strategy = st.booleans()
    elif tp is int:
        strategy = st.integers()
    elif tp is float:
        strategy = st.floats(allow_nan=False) | st.integers()
    elif origin is typing.Union:
        strategy = st.one_of([strategy_for_type(arg) for arg in args])
    elif origin is list or tp is list:
        item = strategy_for_type(args[0] if args else Any)
        strategy = st.lists(item | st.none(), max_size=3)  # Nones are dropped from lists
    elif origin is dict or tp is dict:
        strategy = st.dictionaries(KEY_TEXT, _json_value(), max_size=4)
    else:  # pragma: no cover - a new annotation in a future ocpp release
        raise AssertionError(f"no strategy for {tp!r}")
    _TYPE_STRATEGIES[tp] = strategy
    return strategy


def _has_enum(value: Any) -> bool:
    if isinstance(value, Enum):
        return True
    if isinstance(value, dict):
        return any(_has_enum(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_enum(v) for v in value)
    return False


def _library_payload(obj: Any) -> Any:
    return snake_to_camel_case(remove_nones(serialize_as_dict(obj)))


def _assert_same_payload(obj: Any) -> None:
    ours = payload_from_dataclass(obj)
    library = _library_payload(obj)
    assert ours == library
    assert json.dumps(ours, default=repr) == json.dumps(library, default=repr)  # key order
    assert dumps(CallResult("1", ours)) == CallResult("1", library).to_json()
    assert not _has_enum(ours)  # enum members became plain values


@pytest.mark.parametrize(
    "cls", DATACLASSES, ids=[f"{c.__module__}.{c.__name__}" for c in DATACLASSES]
)
@settings(SETTINGS, max_examples=4)
@given(data=st.data())
def test_payload_from_dataclass_matches_library(cls: type, data: st.DataObject) -> None:
    _assert_same_payload(data.draw(strategy_for_type(cls)))


@dataclasses.dataclass
class _Inner:
    some_value: Any = None
    status: ocpp.v201.enums.RegistrationStatusEnumType | None = None


@dataclasses.dataclass
class _Odd:
    pairs: tuple[Any, ...] = ()
    items: list[Any] = dataclasses.field(default_factory=list)
    mapping: dict[str, Any] = dataclasses.field(default_factory=dict)
    decimal_value: Decimal | None = None


def test_payload_from_dataclass_edge_cases() -> None:
    accepted = ocpp.v201.enums.RegistrationStatusEnumType.accepted
    odd = _Odd(
        pairs=(_Inner(None, accepted), None, {"snake_key": None}),
        items=[None, _Inner(1), [None, {"inner_key": None, "x_y": 1}], accepted],
        mapping={"evse_id": None, "charging_station": {"soc_value": 1, "url": None}},
        decimal_value=Decimal("1.25"),
    )
    _assert_same_payload(odd)
    assert payload_from_dataclass(odd)["items"][-1] == "Accepted"
    assert type(payload_from_dataclass(odd)["items"][-1]) is str
    with pytest.raises(TypeError):
        payload_from_dataclass({"not": "a dataclass"})
    with pytest.raises(TypeError):
        payload_from_dataclass(_Odd)


def test_dataclass_inside_nested_list_is_serialised_unlike_library() -> None:
    # serialize_as_dict() puts the *original* items of a list field back, so a dataclass
    # inside a list inside a list stays a dataclass and the library cannot encode it.
    # payload_from_dataclass converts it: the only known difference (no ocpp type has it).
    odd = _Odd(items=[[_Inner(1, None)], {"k_v": _Inner(2)}])
    library = _library_payload(odd)
    assert library["items"][0][0] == _Inner(1, None)
    with pytest.raises(TypeError):
        CallResult("1", library).to_json()
    ours = payload_from_dataclass(odd)
    assert ours["items"] == [[{"someValue": 1}], {"kV": {"someValue": 2}}]
    assert {k: v for k, v in ours.items() if k != "items"} == {
        k: v for k, v in library.items() if k != "items"
    }


# --------------------------------------------------------------------------- dumps/loads

FRAME_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(),  # includes nan, inf, tiny and huge values
        st.decimals(allow_nan=False, allow_infinity=False, places=3),
        st.text(max_size=8),
        st.sampled_from(ENUM_MEMBERS),
    ),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=16,
)


def _library_json(message: Call | CallResult | CallError) -> str:
    text: str = message.to_json()
    return text


@SETTINGS
@given(st.text(max_size=8), st.text(max_size=12), FRAME_VALUES)
def test_dumps_matches_to_json(unique_id: str, action: str, value: Any) -> None:
    payload = {"value": value}
    for message in (
        Call(unique_id, action, payload),
        CallResult(unique_id, payload, action),
        CallError(unique_id, "GenericError", action, payload),
    ):
        expected = _library_json(message)
        assert dumps(message) == expected
        assert dumps(frame_of(message)) == expected


@pytest.mark.parametrize(
    "value",
    [
        1e-05,
        1.5e-07,
        -3.3e-300,
        1e16,
        1e22,
        0.0001,
        -0.0,
        float("nan"),
        float("-inf"),
        2**64,
        -(2**63) - 1,
        Decimal("21.45"),
        Decimal("1e20"),
        Decimal("-0.04"),
        "ünïcödé ✓ 😀",
        "\ud800",
        "\x7f",
        "4e-0d51 0.00001 null 1e-5",
        [1e-5, "7c1b7a4e-0d51"],
        {1: "int key", None: "none key", 2.5: "float key"},
        {True: "bool key"},
        (1, 2, (3,)),
    ],
)
def test_dumps_edge_values(value: Any) -> None:
    message = CallResult("1", {"v": value, "list": [value]})
    assert dumps(message) == _library_json(message)


def test_dumps_objects_like_library() -> None:
    class WithToJson:
        def to_json(self) -> dict[str, int]:
            return {"a": 1}

    message = CallResult("1", {"x": WithToJson()})
    assert dumps(message) == _library_json(message) == '[3,"1",{"x":{"a":1}}]'
    with pytest.raises(TypeError):
        dumps(CallResult("1", {"x": object()}))
    with pytest.raises(TypeError):
        dumps("not a message")


def _same_parse(text: str | bytes) -> None:
    try:
        expected = json.loads(text)
    except Exception as exc:
        with pytest.raises(type(exc)):
            loads(text)
        return
    got = loads(text)
    assert repr(got) == repr(expected)  # also tells 1 from 1.0, -0.0 from 0.0, nan


@SETTINGS
@given(FRAME_VALUES.filter(lambda v: not isinstance(v, Decimal)), st.booleans())
def test_loads_matches_json_loads(value: Any, ensure_ascii: bool) -> None:
    try:
        text = json.dumps([2, "id", "Action", value], ensure_ascii=ensure_ascii, default=str)
    except (TypeError, ValueError):
        return
    _same_parse(text)
    _same_parse(text.encode("utf-8", "surrogatepass"))


@SETTINGS
@given(st.text(alphabet='[]{}",:0123456789.eE+-truefalsnNI\\u ', max_size=30))
def test_loads_garbage_matches_json_loads(text: str) -> None:
    _same_parse(text)


@pytest.mark.parametrize(
    "text",
    [
        '[2,"1","Heartbeat",{}]',
        "[NaN, Infinity, -Infinity]",
        "[1e400, -1e400]",
        "[123456789012345678901234567890, -9223372036854775809, 18446744073709551616]",
        "[9223372036854775807, 18446744073709551615, 1234567890123456789.5]",
        '{"a": 1, "a": 2}',
        '["\\ud800", "\\udc00x"]',
        "\ufeff[1]",
        "[1,]",
        "",
        "[" * 3000 + "]" * 3000,
        b'[2,"1","A",{"k":"\xc3\xa4"}]',
        b"\xef\xbb\xbf[1]",
        "[1]".encode("utf-16"),
        b'["\xed\xa0\x80"]',
        b"[\xff]",
    ],
)
def test_loads_edge_cases(text: str | bytes) -> None:
    _same_parse(text)
