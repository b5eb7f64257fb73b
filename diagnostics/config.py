"""Load ``config/playbooks.toml``, ``config/sla.toml`` and ``config/log_signatures.toml``.

The only module of the package that touches files. ``load_*`` take a path, ``parse_*`` the
TOML text. Every problem raises :class:`~diagnostics.exceptions.ConfigError` naming the file,
the entry and the key: unknown keys, wrong types, bad durations, unknown step actions, a reset
in a safety class, a detection no class covers, an invalid regular expression...

Durations are a number of seconds or a string such as ``"90s"``, ``"5m"``, ``"1h30m"``,
``"2d"``, ``"250ms"``.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Container
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from diagnostics.commands import LogKind
from diagnostics.events import DriverCategory
from diagnostics.exceptions import ConfigError
from diagnostics.model import Priority
from diagnostics.playbooks import Detection, Limits, Match, Playbook, PlaybookSet, Step, StepAction
from diagnostics.signatures import Severity, SignatureRule, SignatureSet
from diagnostics.sla import SlaAssignment, SlaPolicies, SlaPolicy, SlaTargets

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_E = TypeVar("_E")
_LIMITS = Limits()


def parse_duration(value: object, where: str = "duration") -> timedelta:
    """A number of seconds, or ``"90s"``, ``"5m"``, ``"1h30m"``, ``"2d"``, ``"250ms"``."""
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected a duration, got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ConfigError(f"{where}: a duration must not be negative")
        return timedelta(seconds=value)
    if isinstance(value, str):
        text = value.strip().replace(" ", "")
        parts = _DURATION_PART.findall(text)
        if text and "".join(n + u for n, u in parts) == text:
            return timedelta(seconds=sum(float(n) * _UNITS[u] for n, u in parts))
    raise ConfigError(
        f"{where}: expected a duration such as 30, \"90s\", \"5m\", \"1h30m\", got {value!r}"
    )


class _Table:
    """A TOML table read with checks; ``done()`` rejects keys nobody read."""

    def __init__(self, data: object, where: str) -> None:
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a table, got {type(data).__name__}")
        self.data: dict[str, Any] = data
        self.where = where
        self.read: set[str] = set()

    def _get(self, key: str) -> Any:
        self.read.add(key)
        return self.data.get(key)

    def has(self, key: str) -> bool:
        return key in self.data

    def text(self, key: str, default: str | None = None, *, required: bool = False) -> str:
        value = self._get(key)
        if value is None:
            if required or default is None:
                raise ConfigError(f"{self.where}: missing key {key!r}")
            return default
        if not isinstance(value, str):
            raise ConfigError(f"{self.where}.{key}: expected a string, got {value!r}")
        return value

    def opt_str(self, key: str) -> str | None:
        value = self._get(key)
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{self.where}.{key}: expected a string, got {value!r}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise ConfigError(f"{self.where}.{key}: expected true or false, got {value!r}")
        return value

    def opt_bool(self, key: str) -> bool | None:
        value = self._get(key)
        if value is not None and not isinstance(value, bool):
            raise ConfigError(f"{self.where}.{key}: expected true or false, got {value!r}")
        return value

    def integer(self, key: str, default: int | None = None, *, minimum: int = 0) -> int:
        value = self._get(key)
        if value is None:
            if default is None:
                raise ConfigError(f"{self.where}: missing key {key!r}")
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{self.where}.{key}: expected an integer, got {value!r}")
        if value < minimum:
            raise ConfigError(f"{self.where}.{key}: must be >= {minimum}, got {value}")
        return value

    def opt_int(self, key: str) -> int | None:
        if self.data.get(key) is None:
            self.read.add(key)
            return None
        return self.integer(key, minimum=0)

    def number(self, key: str, default: float) -> float:
        value = self._get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{self.where}.{key}: expected a number, got {value!r}")
        return float(value)

    def duration(self, key: str) -> timedelta | None:
        value = self._get(key)
        return None if value is None else parse_duration(value, f"{self.where}.{key}")

    def required_duration(self, key: str) -> timedelta:
        value = self.duration(key)
        if value is None:
            raise ConfigError(f"{self.where}: missing key {key!r}")
        return value

    def strs(self, key: str) -> tuple[str, ...]:
        value = self._get(key)
        if value is None:
            return ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{self.where}.{key}: expected a list of strings, got {value!r}")
        return tuple(value)

    def enum(self, key: str, kind: Callable[[str], _E], default: _E) -> _E:
        value = self._get(key)
        if value is None:
            return default
        return _enum(kind, value, f"{self.where}.{key}")

    def enums(self, key: str, kind: Callable[[str], _E]) -> tuple[_E, ...]:
        return tuple(_enum(kind, v, f"{self.where}.{key}") for v in self.strs(key))

    def table(self, key: str) -> _Table:
        self.read.add(key)
        return _Table(self.data.get(key, {}), f"{self.where}.{key}")

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.read)
        if unknown:
            raise ConfigError(f"{self.where}: unknown key(s) {', '.join(map(repr, unknown))}")


def _enum(kind: Callable[[str], _E], value: object, where: str) -> _E:
    try:
        return kind(str(value))
    except ValueError:
        choices = [m.value for m in kind] if isinstance(kind, type) else []  # type: ignore[attr-defined]
        raise ConfigError(
            f"{where}: {value!r} is not one of {', '.join(map(repr, choices))}"
        ) from None


def _toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{source}: not valid TOML: {error}") from error


def _read(path: str | Path) -> tuple[str, str]:
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8"), str(path)
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror or error}") from error


# ---------------------------------------------------------------- playbooks


def load_playbooks(path: str | Path) -> PlaybookSet:
    """Read and validate a playbooks file."""
    text, source = _read(path)
    return parse_playbooks(text, source)


def parse_playbooks(text: str, source: str = "<playbooks>") -> PlaybookSet:
    """Validate playbooks TOML text (see ``config/playbooks.toml`` for the format)."""
    root = _Table(_toml(text, source), source)
    limits_table = root.table("limits")
    limits = Limits(
        resets_per_day=limits_table.integer("resets_per_day", _LIMITS.resets_per_day),
        boot_loop_boots=limits_table.integer("boot_loop_boots", _LIMITS.boot_loop_boots, minimum=1),
        failed_sessions=limits_table.integer("failed_sessions", _LIMITS.failed_sessions, minimum=1),
        min_session_energy_wh=limits_table.number(
            "min_session_energy_wh", _LIMITS.min_session_energy_wh
        ),
        max_occurrences=limits_table.integer("max_occurrences", _LIMITS.max_occurrences),
        timeline_size=limits_table.integer("timeline_size", _LIMITS.timeline_size, minimum=1),
        auto_resolve=limits_table.flag("auto_resolve", _LIMITS.auto_resolve),
    )
    limits_table.done()
    default = root.text("default_class", required=True)
    classes = root._get("fault_class")
    if not isinstance(classes, list) or not classes:
        raise ConfigError(f"{source}: expected [[fault_class]] tables")
    playbooks = []
    for index, raw in enumerate(classes):
        name = raw.get("name") if isinstance(raw, dict) else None
        where = f"{source}: fault_class[{index}]" + (f" ({name})" if name else "")
        playbooks.append(_playbook(_Table(raw, where)))
    root.done()
    try:
        return PlaybookSet(playbooks, limits=limits, default=default)
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}") from None


def _playbook(table: _Table) -> Playbook:
    name = table.text("name", required=True)
    match = Match(
        codes=table.strs("codes"),
        components=table.strs("components"),
        vendor_codes=table.strs("vendor_codes"),
        detections=table.enums("detections", Detection),
        driver_categories=table.enums("driver_categories", DriverCategory),
    )
    diagnose = _steps(table, "diagnose")
    steps = _steps(table, "steps")
    priority_raw = table.opt_str("priority")
    priority = None
    if priority_raw is not None and priority_raw != "auto":
        priority = _enum(Priority, priority_raw, f"{table.where}.priority")
    playbook = Playbook(
        name=name,
        title=table.text("title", name),
        match=match,
        diagnose=diagnose,
        steps=steps,
        grace=table.duration("grace"),
        settle=table.duration("settle"),
        immediate=table.flag("immediate", False),
        safety=table.flag("safety", False),
        hold_while_plugged=table.flag("hold_while_plugged", False),
        priority=priority,
        tier=table.text("tier", "field_service"),
        suggested_action=table.text("suggested_action", ""),
        parts=table.strs("parts"),
        max_occurrences=table.opt_int("max_occurrences"),
        auto_resolve=table.opt_bool("auto_resolve"),
    )
    table.done()
    return playbook


def _steps(table: _Table, key: str) -> tuple[Step, ...]:
    raw = table._get(key)
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"{table.where}.{key}: expected a list of steps")
    steps = []
    for index, item in enumerate(raw):
        where = f"{table.where}.{key}[{index}]"
        if isinstance(item, str):
            steps.append(Step(_enum(StepAction, item, where)))
            continue
        step = _Table(item, where)
        action = _enum(StepAction, step.text("action", required=True), f"{where}.action")
        priority_raw = step.opt_str("priority")
        steps.append(
            Step(
                action=action,
                timeout=step.duration("timeout"),
                settle=step.duration("settle"),
                allow_during_session=step.flag("allow_during_session", False),
                keys=step.strs("keys"),
                priority=None if priority_raw is None else _enum(
                    Priority, priority_raw, f"{where}.priority"
                ),
                scope=step.text("scope", "station"),
                log_kind=step.enum("log_kind", LogKind, LogKind.DIAGNOSTICS),
            )
        )
        step.done()
    return tuple(steps)


# ---------------------------------------------------------------- SLA


def load_sla(path: str | Path) -> SlaPolicies:
    """Read and validate an SLA policies file."""
    text, source = _read(path)
    return parse_sla(text, source)


def parse_sla(text: str, source: str = "<sla>") -> SlaPolicies:
    """Validate SLA TOML text (see ``config/sla.toml`` for the format)."""
    root = _Table(_toml(text, source), source)
    default = root.text("default_policy", required=True)
    policies_table = root.table("policy")
    policies: dict[str, SlaPolicy] = {}
    for name in list(policies_table.data):
        table = policies_table.table(name)
        targets: dict[Priority, SlaTargets] = {}
        for priority in Priority:
            if not table.has(priority.value):
                continue
            row = table.table(priority.value)
            targets[priority] = SlaTargets(
                response=row.required_duration("response"),
                resolution=row.required_duration("resolution"),
                on_site=row.duration("on_site"),
            )
            row.done()
        policies[name] = SlaPolicy(
            name=name,
            targets=targets,
            description=table.text("description", ""),
            support=table.text("support", ""),
        )
        table.done()
    policies_table.done()
    assignments = []
    raw_assignments = root._get("assign") or []
    if not isinstance(raw_assignments, list):
        raise ConfigError(f"{source}.assign: expected [[assign]] tables")
    for index, raw in enumerate(raw_assignments):
        table = _Table(raw, f"{source}: assign[{index}]")
        assignments.append(
            SlaAssignment(
                policy=table.text("policy", required=True),
                stations=frozenset(table.strs("stations")),
                sites=frozenset(table.strs("sites")),
                owners=frozenset(table.strs("owners")),
            )
        )
        table.done()
    root.done()
    try:
        return SlaPolicies(policies=policies, default=default, assignments=tuple(assignments))
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}") from None


# ---------------------------------------------------------------- log signatures


def load_signatures(path: str | Path) -> SignatureSet:
    """Read and validate a log signatures file."""
    text, source = _read(path)
    return parse_signatures(text, source)


def parse_signatures(
    text: str, source: str = "<signatures>", *, fault_classes: Container[str] | None = None
) -> SignatureSet:
    """Validate log-signature TOML text. With ``fault_classes`` (e.g. a
    :class:`~diagnostics.playbooks.PlaybookSet`), a rule's ``fault_class`` must name one."""
    root = _Table(_toml(text, source), source)
    raw_rules = root._get("signature") or []
    if not isinstance(raw_rules, list):
        raise ConfigError(f"{source}: expected [[signature]] tables")
    rules = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_rules):
        rule_id = raw.get("id") if isinstance(raw, dict) else None
        where = f"{source}: signature[{index}]" + (f" ({rule_id})" if rule_id else "")
        table = _Table(raw, where)
        rule_id = table.text("id", required=True)
        if rule_id in seen:
            raise ConfigError(f"{where}: id {rule_id!r} is used twice")
        seen.add(rule_id)
        pattern = table.text("pattern", required=True)
        fault_class = table.opt_str("fault_class")
        if fault_classes is not None and fault_class is not None and (
            fault_class not in fault_classes
        ):
            raise ConfigError(f"{where}.fault_class: unknown fault class {fault_class!r}")
        try:
            rule = SignatureRule(
                id=rule_id,
                pattern=pattern,
                finding=table.text("finding", required=True),
                severity=table.enum("severity", Severity, Severity.WARNING),
                suggested_action=table.opt_str("suggested_action"),
                fault_class=fault_class,
                parts=table.strs("parts"),
                escalate=table.flag("escalate", False),
                ignore_case=table.flag("ignore_case", True),
            )
        except re.error as error:
            raise ConfigError(f"{where}.pattern: invalid regular expression: {error}") from None
        table.done()
        rules.append(rule)
    root.done()
    return SignatureSet(tuple(rules))
