"""Hypothesis strategies for OCPP-J frames: random text and bytes, random JSON, and frames built
from the official JSON schemas of each action (as shipped with the ``ocpp`` library), sent valid
or mutated (wrong MessageTypeId or MessageId, missing or junk fields, huge numbers, odd unicode,
deep nesting, answers to CALLs never sent, edited text).

A drawn :class:`Frame` is what goes on the wire (``str``: a text frame, ``bytes``: binary).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import ocpp
from hypothesis import strategies as st

from csms.protocol.connection import _routes
from csms.protocol.v16 import Station16
from csms.protocol.v201 import Station201

SCHEMAS = Path(ocpp.__file__).parent
ACTIONS: dict[str, list[str]] = {
    version: sorted(action for action, handlers in _routes(cls).items()
                    if "_on_action" in handlers)
    for version, cls in (("1.6", Station16), ("2.0.1", Station201))
}
"""The actions a charger may send that the server handles, per version."""

MAX_ID = 36
"""Longest MessageId (OCPP-J 1.6 §4.1.3, 2.0.1 Part 4 §4.1.3)."""


@dataclass(frozen=True)
class Frame:
    """One frame to send, and how it was made (shown when a property fails)."""

    data: str | bytes
    kind: str


# -- values ---------------------------------------------------------------------------------

HUGE_INTS = st.sampled_from([2**31, 2**31 - 1, -(2**31) - 1, 2**53 + 1, 2**63, 2**64,
                             -(2**63) - 1, 10**20, 10**100, -(10**400)])
ODD_FLOATS = st.sampled_from([1e308, -1e308, 5e-324, 1e-7, -0.0, 0.1, 1e16, 123456789.123456789])
ODD_TEXT = st.sampled_from([
    "", " ", "\x00", "a\x00b", "\u202e\u202d", "\ufeff", "\uffff", "\U0001d518\U0001d52b",
    "🔌⚡", "ß" * 40,
    "'; DROP TABLE stations; --", "%s%n%x", "../../etc/passwd", "\r\n\t", "\\", '"', "null",
    "2025-13-45T25:61:61Z", "0000-00-00T00:00:00Z", "9999-12-31T23:59:59.999999Z",
    "1970-01-01T00:00:00+14:00", "-1", "1e999", "NaN", "x" * 5000,
])
TEXT = st.text(max_size=24) | ODD_TEXT
INTS = st.integers(-(2**40), 2**40) | st.integers(-5, 5) | HUGE_INTS
SCALARS = (st.none() | st.booleans() | INTS | ODD_FLOATS
           | st.floats(allow_nan=False, allow_infinity=False) | TEXT)
JUNK: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
"""Any JSON value, with the odd numbers and strings above among them."""

DATES = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                     timezones=st.just(UTC))


@st.composite
def _date_time(draw: st.DrawFn) -> str:
    moment: datetime = draw(DATES)
    style = draw(st.integers(0, 3))
    if style == 0:
        return moment.isoformat().replace("+00:00", "Z")
    if style == 1:
        return moment.isoformat()
    if style == 2:
        offset = timedelta(minutes=draw(st.integers(-14 * 60, 14 * 60)))
        return moment.replace(tzinfo=None).isoformat() + _offset(offset)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _offset(offset: timedelta) -> str:
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


# -- payloads from the schemas --------------------------------------------------------------

@cache
def schema(version: str, action: str) -> dict[str, Any]:
    """The request schema of ``action``."""
    if version == "1.6":
        path = SCHEMAS / "v16" / "schemas" / f"{action}.json"
    else:
        path = SCHEMAS / "v201" / "schemas" / f"{action}Request.json"
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def from_schema(
    node: dict[str, Any], root: dict[str, Any], depth: int = 0
) -> st.SearchStrategy[Any]:
    """Values valid against a (simple, OCPP-style) JSON schema: strings within ``maxLength``
    but of any characters, integers of any size unless bounded, date-times from year 1 to
    9999, optional properties sometimes present."""
    ref = node.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        return from_schema(root["definitions"][name], root, depth)
    if "enum" in node:
        return st.sampled_from(node["enum"])
    kind = node.get("type")
    if kind == "object":
        properties: dict[str, Any] = node.get("properties", {})
        required = set(node.get("required", []))
        must = {k: from_schema(v, root, depth + 1) for k, v in properties.items() if k in required}
        may = ({k: from_schema(v, root, depth + 1) for k, v in properties.items()
                if k not in required} if depth < 5 else {})
        return st.fixed_dictionaries(must, optional=may)
    if kind == "array":
        low = int(node.get("minItems", 0))
        high = max(low, min(int(node.get("maxItems", 3)), 3))
        return st.lists(from_schema(node.get("items", {}), root, depth + 1),
                        min_size=low, max_size=high)
    if kind == "string":
        if node.get("format") == "date-time":
            return _date_time()
        length = int(node.get("maxLength", 64))
        return st.text(max_size=min(length, 64)) | ODD_TEXT.filter(lambda t: len(t) <= length)
    if kind == "integer":
        low, high = node.get("minimum"), node.get("maximum")
        if low is None and high is None:
            return INTS
        return st.integers(low, high)
    if kind == "number":
        return (st.floats(node.get("minimum"), node.get("maximum"), allow_nan=False,
                          allow_infinity=False) | st.integers(-(10**6), 10**6))
    if kind == "boolean":
        return st.booleans()
    return JUNK


@cache
def payloads(version: str, action: str) -> st.SearchStrategy[dict[str, Any]]:
    """Schema-valid payloads of ``action``."""
    root = schema(version, action)
    return from_schema(root, root)


# -- frames ---------------------------------------------------------------------------------

MESSAGE_IDS = (st.text(min_size=1, max_size=MAX_ID)
               | st.uuids().map(str)
               | st.integers(0, 10**6).map(str))


@st.composite
def valid_calls(draw: st.DrawFn, version: str) -> list[Any]:
    """``[2, MessageId, Action, payload]`` with a schema-valid payload."""
    action = draw(st.sampled_from(ACTIONS[version]))
    return [2, draw(MESSAGE_IDS), action, draw(payloads(version, action))]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path (keys and indexes) into a JSON value, the root excluded."""
    found: list[tuple[Any, ...]] = []
    items: list[tuple[Any, Any]] = (list(value.items()) if isinstance(value, dict)
                                    else list(enumerate(value)) if isinstance(value, list)
                                    else [])
    for key, child in items:
        found.append((*prefix, key))
        found.extend(_paths(child, (*prefix, key)))
    return found


def _parent(value: Any, path: tuple[Any, ...]) -> Any:
    for key in path[:-1]:
        value = value[key]
    return value


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    return _parent(value, path)[path[-1]]


_DEEP = "\x00deep\x00"


MUTATIONS = (
    "valid", "type_id", "message_id", "action", "replace", "drop", "extra", "payload",
    "length", "deep", "raw_number", "answer", "text_edit", "lone_surrogate",
)
RAW_NUMBERS = ("1e400", "-1e400", "NaN", "Infinity", "-Infinity", "1" + "0" * 400, "-0", "1.0",
               "1E2", "0.1e-400", "2147483648", "-2147483649", "4294967296", "1.5", "1e9")
"""Numbers as JSON text: some only the standard library reads (``NaN``), some overflow."""


@st.composite
def mutated_frames(draw: st.DrawFn, version: str) -> Frame:
    """A valid CALL with one of :data:`MUTATIONS` applied."""
    frame = draw(valid_calls(version))
    mutation = draw(st.sampled_from(MUTATIONS))
    payload = frame[3]
    paths = _paths(payload)
    if mutation == "type_id":
        frame[0] = draw(st.integers(-3, 12) | HUGE_INTS | JUNK)
    elif mutation == "message_id":
        frame[1] = draw(JUNK | st.text(min_size=MAX_ID + 1, max_size=80) | st.just(""))
    elif mutation == "action":
        other = ACTIONS["2.0.1" if version == "1.6" else "1.6"]
        frame[2] = draw(st.sampled_from(other) | TEXT | JUNK)
    elif mutation == "replace" and paths:
        path = draw(st.sampled_from(paths))
        _parent(payload, path)[path[-1]] = draw(JUNK)
    elif mutation == "drop" and paths:
        path = draw(st.sampled_from(paths))
        parent = _parent(payload, path)
        del parent[path[-1]]
    elif mutation == "extra":
        objects = [payload] + [_at(payload, p) for p in paths
                               if isinstance(_at(payload, p), dict)]
        draw(st.sampled_from(objects))[draw(TEXT)] = draw(JUNK)
    elif mutation == "payload":
        frame[3] = draw(JUNK)
    elif mutation == "length":
        size = draw(st.integers(0, 6))
        frame = frame[:size] if size <= 4 else [*frame, *draw(st.lists(JUNK, min_size=1,
                                                                           max_size=2))]
    elif mutation == "deep":
        # Nested arrays or objects, deeper than a recursive parser goes (written as text: the
        # test's own json.dumps would not go that deep either).
        depth = draw(st.sampled_from([50, 900, 1100, 5000, 20000]))
        opening, closing = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
        if paths:
            path = draw(st.sampled_from(paths))
            _parent(payload, path)[path[-1]] = _DEEP
        else:
            frame[3] = {"deep": _DEEP}
        text = json.dumps(frame).replace(json.dumps(_DEEP), opening * depth + "1" + closing * depth)
        return Frame(text, mutation)
    elif mutation == "raw_number":
        token = draw(st.sampled_from(RAW_NUMBERS))
        if paths:
            path = draw(st.sampled_from(paths))
            _parent(payload, path)[path[-1]] = _DEEP
        else:
            frame[3] = {"n": _DEEP}
        return Frame(json.dumps(frame).replace(json.dumps(_DEEP), token), mutation)
    elif mutation == "answer":
        frame = draw(st.sampled_from([
            [3, frame[1], payload],
            [4, frame[1], "GenericError", "junk", {}],
            [4, frame[1], draw(JUNK), draw(JUNK), draw(JUNK)],
            [3, frame[1]],
        ]))
    elif mutation == "lone_surrogate":
        # JSON may escape a lone UTF-16 surrogate (valid JSON, not valid Unicode text).
        surrogate = chr(draw(st.integers(0xD800, 0xDFFF)))
        strings = [p for p in paths if isinstance(_at(payload, p), str)]
        if strings:
            path = draw(st.sampled_from(strings))
            _parent(payload, path)[path[-1]] += surrogate
        else:
            frame[1] = str(frame[1])[:30] + surrogate
        return Frame(json.dumps(frame, ensure_ascii=True), mutation)
    text = json.dumps(frame, ensure_ascii=draw(st.booleans()))
    if mutation == "text_edit":
        text = draw(_edited(text))
    return Frame(text, mutation)


@st.composite
def _edited(draw: st.DrawFn, text: str) -> str:
    """``text`` with a few characters inserted, deleted or replaced."""
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        what = draw(st.sampled_from(["insert", "delete", "replace"]))
        # A text frame is UTF-8: no lone surrogates here (the client could not send them; the
        # "lone_surrogate" mutation sends them escaped, as JSON allows).
        char = draw(st.sampled_from('[]{}",:0123456789-.eE \\nulltruefalse')
                    | st.characters(codec="utf-8"))
        if what == "insert":
            text = text[:at] + char + text[at:]
        elif what == "delete":
            text = text[:at] + text[at + 1:]
        else:
            text = text[:at] + char + text[at + 1:]
    return text


def random_frames() -> st.SearchStrategy[Frame]:
    """Random text, bytes and JSON: anything a broken or hostile charger could send."""
    return st.one_of(
        st.text(max_size=200).map(lambda t: Frame(t, "text")),
        st.binary(max_size=200).map(lambda b: Frame(b, "bytes")),
        JUNK.map(lambda v: Frame(json.dumps(v), "json")),
        st.lists(JUNK, max_size=6).map(lambda v: Frame(json.dumps(v), "json_array")),
        st.tuples(st.integers(-2, 6), JUNK, JUNK, JUNK).map(
            lambda v: Frame(json.dumps(list(v)), "json_frame")),
        st.tuples(MESSAGE_IDS, TEXT, JUNK).map(
            lambda v: Frame(json.dumps([2, *v]), "json_call")),
        st.text(max_size=200).map(lambda t: Frame(t.encode(), "utf8_bytes")),
    )


def regressions(version: str) -> list[Frame]:
    """Frames that once failed (or nearly): always run first (Hypothesis ``@example``)."""
    deep = "[" * 20000 + "]" * 20000
    if version == "1.6":
        huge = '[2,"huge","StatusNotification",{"connectorId":9223372036854775808,' \
               '"errorCode":"NoError","status":"Available"}]'
        surrogate = '[2,"surrogate","Authorize",{"idTag":"\\ud800"}]'
        number = '[2,"number","MeterValues",{"connectorId":1,"meterValue":[{"timestamp":' \
                 '"2025-01-01T00:00:00Z","sampledValue":[{"value":"1"}]}],"transactionId":1e400}]'
    else:
        huge = '[2,"huge","StatusNotification",{"timestamp":"2025-01-01T00:00:00Z",' \
               '"connectorStatus":"Available","evseId":9223372036854775808,"connectorId":1}]'
        surrogate = ('[2,"surrogate","Authorize",{"idToken":{"idToken":"\\udc00",'
                     '"type":"Central"}}]')
        number = '[2,"number","MeterValues",{"evseId":1,"meterValue":[{"timestamp":' \
                 '"2025-01-01T00:00:00Z","sampledValue":[{"value":1e400}]}]}]'
    frames = [
        ('[2,"deep","Heartbeat",{"x":' + deep + "}]", "deep"),
        ('[2,"deep-data","DataTransfer",{"vendorId":"v","data":' + "[" * 900 + "]" * 900 + "}]",
         "deep"),
        (huge, "huge"),
        (surrogate, "surrogate"),
        (number, "number"),
        ('[2,"a\\"b"]', "escaped_id"),
        ("[2," + json.dumps("é" * 30) + "]", "escaped_id"),
        ('[3,"nobody",{}]', "answer"),
        ('[4,"nobody","GenericError","",{}]', "answer"),
        ('[2,"nul","Heartbeat",{"\\u0000":1}]', "nul"),
        ("[2,\"nan\",\"Heartbeat\",NaN]", "nan"),
    ]
    return [Frame(text, kind) for text, kind in frames] + [Frame(b"\xff\xfe\x00", "bytes")]
