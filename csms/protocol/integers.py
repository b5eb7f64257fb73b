"""OCPP ``integer`` fields are 32-bit signed numbers (OCPP 1.6 §7 and 2.0.1 Part 2 §2.1,
primitive datatypes), but the JSON schemas shipped with the ``ocpp`` library leave most of them
unbounded: a connector id of ``2**63`` is schema-valid, and would fail in a database column.

:func:`out_of_range` walks a payload beside its request schema and names the first ``integer``
field outside 32 bits (``number`` and untyped fields, such as ``DataTransfer.data``, are left
alone). The connection answers it with ``TypeConstraintViolation``.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any, Final

import ocpp

INT32_MIN: Final = -(2**31)
INT32_MAX: Final = 2**31 - 1
_FOLDERS: Final = {"1.6": ("v16", "{}.json"), "2.0.1": ("v201", "{}Request.json")}


@cache
def _schema(version: str, action: str) -> dict[str, Any] | None:
    folder, pattern = _FOLDERS[version]
    path = Path(ocpp.__file__).parent / folder / "schemas" / pattern.format(action)
    try:
        loaded: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return loaded


def out_of_range(version: str, action: str, payload: Any) -> str | None:
    """The path of the first ``integer`` field of ``payload`` beyond 32 bits, else ``None``."""
    schema = _schema(version, action) if version in _FOLDERS else None
    if schema is None:
        return None
    return _walk(payload, schema, schema, "")


def _walk(value: Any, node: dict[str, Any], root: dict[str, Any], path: str) -> str | None:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/definitions/"):
        found = root.get("definitions", {}).get(ref.rsplit("/", 1)[-1])
        if not isinstance(found, dict):
            return None
        node = found
    kind = node.get("type")
    if kind == "integer":
        if type(value) is int and not INT32_MIN <= value <= INT32_MAX:
            return path or "payload"
        return None
    properties = node.get("properties")
    if isinstance(value, dict) and isinstance(properties, dict):
        for key, item in value.items():
            sub = properties.get(key)
            if isinstance(sub, dict):
                found_path = _walk(item, sub, root, f"{path}.{key}" if path else str(key))
                if found_path is not None:
                    return found_path
    items = node.get("items")
    if isinstance(value, list) and isinstance(items, dict):
        for item in value:
            found_path = _walk(item, items, root, f"{path}[]")
            if found_path is not None:
                return found_path
    return None
