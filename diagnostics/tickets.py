"""Field-service tickets and their lifecycle.

A :class:`Ticket` is an immutable value; every change makes a new one. The lifecycle is
``open -> acknowledged -> dispatched -> resolved -> closed`` with shortcuts (see
:data:`TRANSITIONS`): a resolved ticket can be reopened when the fault returns, a closed one
is final. :meth:`Ticket.transition` is the whole state machine; the API drives it through
``DiagnosticsEngine.ticket_status_changed``.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from diagnostics.exceptions import InvalidTransition
from diagnostics.model import (
    DriverReport,
    FindingRecord,
    Priority,
    StationInfo,
    StepRecord,
    TimelineEntry,
)
from diagnostics.sla import SlaDeadlines


class TicketStatus(enum.StrEnum):
    """Where a ticket is in its life."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    DISPATCHED = "dispatched"
    RESOLVED = "resolved"
    CLOSED = "closed"


TRANSITIONS: dict[TicketStatus, frozenset[TicketStatus]] = {
    TicketStatus.OPEN: frozenset(
        {TicketStatus.ACKNOWLEDGED, TicketStatus.DISPATCHED, TicketStatus.RESOLVED,
         TicketStatus.CLOSED}
    ),
    TicketStatus.ACKNOWLEDGED: frozenset(
        {TicketStatus.DISPATCHED, TicketStatus.RESOLVED, TicketStatus.CLOSED}
    ),
    TicketStatus.DISPATCHED: frozenset({TicketStatus.RESOLVED, TicketStatus.CLOSED}),
    TicketStatus.RESOLVED: frozenset({TicketStatus.CLOSED, TicketStatus.OPEN}),
    TicketStatus.CLOSED: frozenset(),
}
"""Allowed status changes."""

ACTIVE_STATUSES = frozenset(
    {TicketStatus.OPEN, TicketStatus.ACKNOWLEDGED, TicketStatus.DISPATCHED}
)
"""A ticket in one of these is "open" in the sense of one open ticket per fault key."""


class TicketReason(enum.StrEnum):
    """Why a ticket was opened."""

    STEPS_EXHAUSTED = "remote_steps_exhausted"
    SAFETY = "safety"
    FLAPPING = "flapping"
    RECURRENCE = "recurrence"
    OFFLINE = "offline"
    PHYSICAL_DAMAGE = "physical_damage"
    LOG_FINDING = "log_finding"


@dataclass(frozen=True, slots=True)
class TicketNote:
    """One entry of a ticket's log: an update, or a status change (``status`` set)."""

    at: datetime
    text: str
    status: TicketStatus | None = None
    by: str | None = None


@dataclass(frozen=True, slots=True)
class Ticket:
    """A field-service ticket with all the evidence the engine gathered.

    ``connector`` is the 1.6 connector id or the 2.0.1 EVSE id, 0 for the whole station.
    ``tier`` is who handles it (from the playbook: field_service, site_electrician,
    back_office...); the contract's support hours are in ``sla.support``.
    """

    ticket_id: str
    run_id: str
    station_id: str
    connector: int
    fault_class: str
    title: str
    status: TicketStatus
    priority: Priority
    tier: str
    reason: TicketReason
    opened_at: datetime
    updated_at: datetime
    sla: SlaDeadlines | None = None
    station: StationInfo | None = None
    codes: tuple[str, ...] = ()
    vendor_codes: tuple[str, ...] = ()
    components: tuple[str, ...] = ()
    timeline: tuple[TimelineEntry, ...] = ()
    steps: tuple[StepRecord, ...] = ()
    findings: tuple[FindingRecord, ...] = ()
    reports: tuple[DriverReport, ...] = ()
    suggested_action: str = ""
    parts: tuple[str, ...] = ()
    notes: tuple[TicketNote, ...] = ()
    resolved_at: datetime | None = None

    @property
    def active(self) -> bool:
        """Open, acknowledged or dispatched."""
        return self.status in ACTIVE_STATUSES

    def can(self, status: TicketStatus) -> bool:
        """Whether the lifecycle allows moving to ``status``."""
        return status in TRANSITIONS[self.status]

    def transition(
        self, status: TicketStatus, at: datetime, note: str | None = None, by: str | None = None
    ) -> Ticket:
        """The ticket in ``status``; raises :class:`InvalidTransition` when not allowed."""
        if not self.can(status):
            raise InvalidTransition(
                f"ticket {self.ticket_id}: {self.status.value} -> {status.value} is not allowed"
            )
        text = note or f"status {self.status.value} -> {status.value}"
        return dataclasses.replace(
            self,
            status=status,
            updated_at=at,
            notes=(*self.notes, TicketNote(at=at, text=text, status=status, by=by)),
            resolved_at=at if status is TicketStatus.RESOLVED else (
                None if status is TicketStatus.OPEN else self.resolved_at
            ),
        )

    def with_note(self, at: datetime, text: str, by: str | None = None) -> Ticket:
        """The ticket with one more note."""
        return dataclasses.replace(
            self, updated_at=at, notes=(*self.notes, TicketNote(at=at, text=text, by=by))
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible form (times as ISO strings, enums as values)."""
        from diagnostics.serde import encode

        result = encode(Ticket, self)
        assert isinstance(result, dict)
        return result

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Ticket:
        """Inverse of :meth:`to_dict`."""
        from diagnostics.serde import decode

        ticket = decode(Ticket, data)
        assert isinstance(ticket, Ticket)
        return ticket


def sla_breaches(ticket: Ticket, now: datetime) -> tuple[str, ...]:
    """The SLA deadlines ``ticket`` has missed at ``now``: ``response`` (still open, not
    acknowledged, after ``response_by``), ``on_site`` (not yet dispatched after
    ``on_site_by``), ``resolution`` (still active after ``resolution_by``)."""
    sla = ticket.sla
    if sla is None or not ticket.active:
        return ()
    missed: list[str] = []
    if ticket.status is TicketStatus.OPEN and now > sla.response_by:
        missed.append("response")
    if (
        sla.on_site_by is not None
        and ticket.status in (TicketStatus.OPEN, TicketStatus.ACKNOWLEDGED)
        and now > sla.on_site_by
    ):
        missed.append("on_site")
    if now > sla.resolution_by:
        missed.append("resolution")
    return tuple(missed)
