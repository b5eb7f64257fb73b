"""What the engine asks the server to do: the outputs of every engine call.

- :class:`SendCommand`: send this command to the station, then report the outcome with
  ``engine.command_finished(command_id, outcome, now)`` (always, even offline or timed out).
- :class:`OpenTicket` / :class:`UpdateTicket` / :class:`ResolveTicket`: persist and publish
  the ticket (each carries the full new :class:`~diagnostics.tickets.Ticket`).
- :class:`RunChanged`: a run moved (new step, result, outcome): persist, show, publish.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from diagnostics.commands import StationCommand
from diagnostics.model import DriverReport, FindingRecord, StepRecord
from diagnostics.tickets import Ticket


@dataclass(frozen=True, slots=True)
class RunView:
    """A run as the dashboard, the store and MQTT see it.

    ``phase`` is where the run is (grace, command, verify, log_wait, wait_precondition,
    hold_plugged, ticketed, done); ``outcome`` is set when it ended: ``cleared`` (during the
    grace period or diagnosis), ``fixed`` (a remote step verified), ``recovered`` (healthy again
    without a remote fix), ``resolved`` (healthy again after a ticket), ``healthy_again``
    (same, ticket left to humans), ``diagnosed`` (operator run, nothing to do), ``superseded``,
    ``merged``, ``closed_by_operator``.
    """

    run_id: str
    station_id: str
    connector: int
    fault_class: str
    detection: str
    phase: str
    started_at: datetime
    updated_at: datetime
    plan: tuple[str, ...]
    step_index: int
    steps: tuple[StepRecord, ...]
    findings: tuple[FindingRecord, ...] = ()
    reports: tuple[DriverReport, ...] = ()
    codes: tuple[str, ...] = ()
    vendor_codes: tuple[str, ...] = ()
    ticket_id: str | None = None
    escalation: str | None = None
    wait_reason: str | None = None
    outcome: str | None = None
    safety: bool = False
    """A safety fault (by class or by a log finding): never reset."""
    healthy_since: datetime | None = None
    """Since when the fault looks gone (it must stay so for the settle period)."""

    @property
    def current_step(self) -> str | None:
        """The action of the step in progress, ``None`` when none is."""
        if self.outcome is not None or self.step_index >= len(self.plan):
            return None
        if self.phase in ("grace", "hold_plugged", "ticketed"):
            return None
        return self.plan[self.step_index]


@dataclass(frozen=True, slots=True)
class SendCommand:
    """Send ``command`` to ``station_id``; report back with the same ``command_id``."""

    command_id: str
    station_id: str
    command: StationCommand
    run_id: str


@dataclass(frozen=True, slots=True)
class OpenTicket:
    """A new field-service ticket."""

    ticket: Ticket


@dataclass(frozen=True, slots=True)
class UpdateTicket:
    """A ticket changed: new evidence, a note, a status change (reopened included)."""

    ticket_id: str
    note: str
    ticket: Ticket


@dataclass(frozen=True, slots=True)
class ResolveTicket:
    """The charger is verifiably healthy again: the ticket is resolved."""

    ticket_id: str
    reason: str
    ticket: Ticket


@dataclass(frozen=True, slots=True)
class RunChanged:
    """A run changed; ``run.outcome`` is set on its last change."""

    run: RunView


Action = SendCommand | OpenTicket | UpdateTicket | ResolveTicket | RunChanged
