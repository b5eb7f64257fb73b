"""Small value types shared by the engine, its tickets and its run views."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from diagnostics.commands import StationCommand
from diagnostics.signatures import LogFinding


class Priority(enum.StrEnum):
    """Ticket priority: P1 safety, P2 station down, P3 connector down, P4 degraded."""

    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"


@dataclass(frozen=True, slots=True)
class StationInfo:
    """What the operator knows about a station; the server supplies it (see the engine).

    ``sla_policy`` forces an SLA policy by name; otherwise the policy is chosen from the
    assignments in ``config/sla.toml`` (by station, site or owner). ``contract`` is the service
    contract (SLA) number quoted on tickets.
    """

    station_id: str
    site: str | None = None
    owner: str | None = None
    location: str | None = None
    contract: str | None = None
    sla_policy: str | None = None


class StepResult(enum.StrEnum):
    """How one step of a run ended."""

    PENDING = "pending"
    DONE = "done"
    """A diagnostic or protective step completed (status pulled, connector set inoperative)."""
    FAILED = "failed"
    """The command was refused, not supported, timed out, or the station was offline."""
    VERIFIED = "verified"
    """A remote fix: the command was accepted and the verification passed."""
    NOT_VERIFIED = "not_verified"
    """The command was accepted but the fault did not go away within the step timeout."""
    SKIPPED = "skipped"
    """A precondition did not hold (live session, reset budget, safety fault)."""
    CANCELLED = "cancelled"
    """The run ended (fault cleared, superseded) before the step finished."""


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One step of a run as it happened: the evidence a ticket carries."""

    index: int
    action: str
    started_at: datetime
    result: StepResult = StepResult.PENDING
    finished_at: datetime | None = None
    command_ids: tuple[str, ...] = ()
    commands: tuple[StationCommand, ...] = ()
    outcome: str | None = None
    """The :class:`~diagnostics.commands.OutcomeStatus` value of the last command."""
    station_status: str | None = None
    detail: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FindingRecord:
    """A log finding with the log it came from."""

    finding: LogFinding
    at: datetime
    request_id: int | None = None
    log_ref: str | None = None


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One observation in a station's bounded history (status, fault, boot, command...)."""

    at: datetime
    kind: str
    text: str
    connector: int | None = None


@dataclass(frozen=True, slots=True)
class DriverReport:
    """A driver's fault report as attached to a run and its ticket."""

    report_id: str
    at: datetime
    category: str
    text: str
    connector: int | None = None
