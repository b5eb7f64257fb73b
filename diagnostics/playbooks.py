"""Playbooks: which remediation ladder for which fault class.

A :class:`Playbook` names a fault class, says how to recognise it (:class:`Match`), which
diagnostic steps to run and which remote steps to try, in order. :class:`PlaybookSet` holds
them all with the global :class:`Limits` and classifies faults. ``config/playbooks.toml`` is
the user-editable source (see :mod:`diagnostics.config`); building a :class:`PlaybookSet`
validates it, whatever the source.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta

from diagnostics.commands import LogKind
from diagnostics.events import DriverCategory
from diagnostics.exceptions import ConfigError
from diagnostics.model import Priority


class StepAction(enum.StrEnum):
    """What a step does."""

    STATUS = "status"
    """Diagnose: TriggerMessage StatusNotification."""
    CONFIGURATION = "configuration"
    """Diagnose: GetConfiguration / GetVariables with the step's ``keys``."""
    LOG = "log"
    """Diagnose: RequestLog, then wait for the upload and its analysis."""
    PROBE = "probe"
    """TriggerMessage Heartbeat: is a silent station still answering?"""
    UNLOCK = "unlock"
    AVAILABILITY_CYCLE = "availability_cycle"
    """ChangeAvailability inoperative, then operative."""
    SOFT_RESET = "soft_reset"
    HARD_RESET = "hard_reset"
    SET_INOPERATIVE = "set_inoperative"
    """Protective: take the connector (or station) out of service."""
    WAIT = "wait"
    """Do nothing for ``timeout`` and see whether the fault goes away (cool down, grid)."""
    TICKET = "ticket"


DIAGNOSTIC_ACTIONS = frozenset({StepAction.STATUS, StepAction.CONFIGURATION, StepAction.LOG})
REMEDIAL_ACTIONS = frozenset(
    {
        StepAction.PROBE,
        StepAction.UNLOCK,
        StepAction.AVAILABILITY_CYCLE,
        StepAction.SOFT_RESET,
        StepAction.HARD_RESET,
        StepAction.WAIT,
    }
)
"""Steps that try to make the fault go away; a ticket waits until all of them failed."""
RESET_ACTIONS = frozenset({StepAction.SOFT_RESET, StepAction.HARD_RESET})
_SESSION_GUARDED = frozenset(
    {StepAction.SOFT_RESET, StepAction.HARD_RESET, StepAction.UNLOCK, StepAction.AVAILABILITY_CYCLE}
)


class Detection(enum.StrEnum):
    """How a fault was noticed; playbooks can match on it."""

    FAULT = "fault"
    """A reported error code or 2.0.1 problem variable (matched by code/component/vendor)."""
    FAULTED_STATUS = "faulted_status"
    """Status Faulted without an error code (2.0.1, or 1.6 with NoError)."""
    OFFLINE = "offline"
    SILENT = "silent"
    BOOT_LOOP = "boot_loop"
    FAILED_SESSIONS = "failed_sessions"
    DRIVER_REPORT = "driver_report"
    OPERATOR = "operator"


#: Detections that must each have a playbook (driver reports are matched by category).
REQUIRED_DETECTIONS = (
    Detection.FAULTED_STATUS,
    Detection.OFFLINE,
    Detection.SILENT,
    Detection.BOOT_LOOP,
    Detection.FAILED_SESSIONS,
    Detection.OPERATOR,
)


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a ladder.

    ``timeout``: verification limit (unlock, availability cycle, resets) or duration (wait);
    ``None`` takes the :class:`~diagnostics.timings.Timings` default. ``settle`` overrides the
    class's settle period. ``allow_during_session`` lets a reset/unlock/cycle run while a session
    is live. ``keys``: configuration keys. ``priority``: of the ticket this step opens.
    ``scope``: ``"station"`` or ``"evse"`` (2.0.1 resets of one EVSE).
    """

    action: StepAction
    timeout: timedelta | None = None
    settle: timedelta | None = None
    allow_during_session: bool = False
    keys: tuple[str, ...] = ()
    priority: Priority | None = None
    scope: str = "station"
    log_kind: LogKind = LogKind.DIAGNOSTICS


@dataclass(frozen=True, slots=True)
class Match:
    """How a fault class is recognised. The most specific match wins: vendor code, then
    ``Component.Variable``, then component, then error code; detections and driver categories
    match the other kinds of detection."""

    codes: tuple[str, ...] = ()
    components: tuple[str, ...] = ()
    vendor_codes: tuple[str, ...] = ()
    detections: tuple[Detection, ...] = ()
    driver_categories: tuple[DriverCategory, ...] = ()


@dataclass(frozen=True, slots=True)
class Playbook:
    """A fault class and its ladder.

    ``immediate``: no grace period, and the remote steps (typically set_inoperative, ticket)
    run before the diagnostic ones. ``safety``: never reset (validated), P1 by default.
    ``hold_while_plugged``: do nothing while a vehicle is plugged in (EV communication errors).
    ``max_occurrences``: this many detections within the recurrence window open a ticket at
    once (``None``: the global limit; 0: never). ``priority`` ``None`` is derived (P1 safety,
    P2 station down, P3 connector down, P4 degraded).
    """

    name: str
    title: str = ""
    match: Match = Match()
    diagnose: tuple[Step, ...] = ()
    steps: tuple[Step, ...] = ()
    grace: timedelta | None = None
    settle: timedelta | None = None
    immediate: bool = False
    safety: bool = False
    hold_while_plugged: bool = False
    priority: Priority | None = None
    tier: str = "field_service"
    suggested_action: str = ""
    parts: tuple[str, ...] = ()
    max_occurrences: int | None = None
    auto_resolve: bool | None = None

    def plan(self) -> tuple[Step, ...]:
        """The steps in execution order."""
        return self.steps + self.diagnose if self.immediate else self.diagnose + self.steps


@dataclass(frozen=True, slots=True)
class Limits:
    """Global limits and thresholds (``[limits]`` in playbooks.toml)."""

    resets_per_day: int = 3
    """Remote resets per station within ``Timings.reset_budget_window``."""
    boot_loop_boots: int = 3
    """Unexpected boots within ``Timings.boot_loop_window`` that make a boot loop."""
    failed_sessions: int = 3
    """Failed sessions on one connector within ``Timings.failed_session_window``."""
    min_session_energy_wh: float = 50.0
    """A session that delivered less than this failed."""
    max_occurrences: int = 0
    """Default of :attr:`Playbook.max_occurrences` (0: off)."""
    timeline_size: int = 200
    """Entries kept per station in the status timeline."""
    auto_resolve: bool = True
    """Resolve a ticket when the charger is verifiably healthy again."""


def _norm(value: str) -> str:
    return value.strip().casefold()


class PlaybookSet:
    """All playbooks, validated, with the lookups that classify faults.

    ``default`` names the playbook for faults no playbook matches.
    """

    __slots__ = (
        "_by_code",
        "_by_component",
        "_by_detection",
        "_by_driver",
        "_by_name",
        "_by_vendor",
        "default",
        "limits",
    )

    def __init__(
        self, playbooks: Iterable[Playbook], *, limits: Limits | None = None, default: str
    ) -> None:
        self.limits = limits or Limits()
        self._by_name: dict[str, Playbook] = {}
        self._by_code: dict[str, Playbook] = {}
        self._by_component: dict[str, Playbook] = {}
        self._by_vendor: dict[str, Playbook] = {}
        self._by_detection: dict[Detection, Playbook] = {}
        self._by_driver: dict[DriverCategory, Playbook] = {}
        for playbook in playbooks:
            _validate(playbook)
            if playbook.name in self._by_name:
                raise ConfigError(f"fault class {playbook.name!r} is defined twice")
            self._by_name[playbook.name] = playbook
            self._index(playbook)
        if default not in self._by_name:
            raise ConfigError(f"default fault class {default!r} is not defined")
        self.default = self._by_name[default]
        missing = [d.value for d in REQUIRED_DETECTIONS if d not in self._by_detection]
        missing += [f"driver:{c.value}" for c in DriverCategory if c not in self._by_driver]
        if missing:
            raise ConfigError("no fault class matches detection(s): " + ", ".join(missing))

    def _index(self, playbook: Playbook) -> None:
        tables: list[tuple[dict[str, Playbook], Iterable[str], str]] = [
            (self._by_code, playbook.match.codes, "code"),
            (self._by_component, playbook.match.components, "component"),
            (self._by_vendor, playbook.match.vendor_codes, "vendor code"),
        ]
        for table, keys, what in tables:
            for key in keys:
                other = table.setdefault(_norm(key), playbook)
                if other is not playbook:
                    raise ConfigError(
                        f"{what} {key!r} matches both {other.name!r} and {playbook.name!r}"
                    )
        for detection in playbook.match.detections:
            other = self._by_detection.setdefault(detection, playbook)
            if other is not playbook:
                raise ConfigError(
                    f"detection {detection.value!r} matches both {other.name!r}"
                    f" and {playbook.name!r}"
                )
        for category in playbook.match.driver_categories:
            other = self._by_driver.setdefault(category, playbook)
            if other is not playbook:
                raise ConfigError(
                    f"driver category {category.value!r} matches both {other.name!r}"
                    f" and {playbook.name!r}"
                )

    def __iter__(self) -> Iterator[Playbook]:
        return iter(self._by_name.values())

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def get(self, name: str) -> Playbook | None:
        """The playbook of a fault class, ``None`` when unknown."""
        return self._by_name.get(name)

    def classify(
        self,
        code: str | None,
        component: str | None = None,
        variable: str | None = None,
        vendor_code: str | None = None,
    ) -> Playbook:
        """The playbook for a reported fault (most specific match first, else the default)."""
        if vendor_code:
            found = self._by_vendor.get(_norm(vendor_code))
            if found is not None:
                return found
        if component:
            if variable:
                found = self._by_component.get(_norm(f"{component}.{variable}"))
                if found is not None:
                    return found
            found = self._by_component.get(_norm(component))
            if found is not None:
                return found
        if code:
            found = self._by_code.get(_norm(code))
            if found is not None:
                return found
        return self.default

    def for_detection(self, detection: Detection) -> Playbook:
        """The playbook of a non-code detection (offline, silent, boot loop...)."""
        return self._by_detection.get(detection, self.default)

    def for_driver(self, category: DriverCategory) -> Playbook:
        """The playbook of a driver report category."""
        return self._by_driver.get(category, self.default)


def _validate(playbook: Playbook) -> None:
    where = f"fault class {playbook.name!r}"
    if not playbook.name or not playbook.name.replace("_", "").replace("-", "").isalnum():
        raise ConfigError(f"{where}: name must be letters, digits, '_' or '-'")
    for step in playbook.diagnose:
        if step.action not in DIAGNOSTIC_ACTIONS:
            raise ConfigError(
                f"{where}: diagnose step {step.action.value!r} is not one of"
                f" {sorted(a.value for a in DIAGNOSTIC_ACTIONS)}"
            )
    ticket_seen = False
    for index, step in enumerate(playbook.steps):
        here = f"{where}: steps[{index}] ({step.action.value})"
        if step.action in DIAGNOSTIC_ACTIONS:
            raise ConfigError(f"{here}: diagnostic steps belong in 'diagnose'")
        if playbook.safety and step.action in RESET_ACTIONS:
            raise ConfigError(f"{here}: a safety fault class must never reset the station")
        if ticket_seen and step.action in REMEDIAL_ACTIONS:
            raise ConfigError(f"{here}: no remote fix after the ticket step")
        if step.action is StepAction.TICKET:
            if ticket_seen:
                raise ConfigError(f"{here}: a second ticket step")
            ticket_seen = True
        if step.allow_during_session and step.action not in _SESSION_GUARDED:
            raise ConfigError(f"{here}: allow_during_session only applies to resets, unlock"
                              " and availability_cycle")
        if step.scope not in ("station", "evse"):
            raise ConfigError(f"{here}: scope must be 'station' or 'evse'")
        for value in (step.timeout, step.settle):
            if value is not None and value < timedelta(0):
                raise ConfigError(f"{here}: durations must not be negative")
    if playbook.max_occurrences is not None and playbook.max_occurrences < 0:
        raise ConfigError(f"{where}: max_occurrences must be >= 0")
