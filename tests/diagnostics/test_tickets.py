"""Ticket lifecycle, one open ticket per fault key, reopening, serialisation."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from diagnostics import InvalidTransition, Ticket, TicketStatus, UnknownTicket
from diagnostics.commands import OutcomeStatus
from diagnostics.tickets import TRANSITIONS, TicketReason
from tests.diagnostics.harness import T0, Harness


def ticketed() -> Harness:
    h = Harness()
    h.online()
    h.fault(1, "ReaderFailure")
    h.advance(minutes=5)
    h.complete_diagnosis()
    h.finish(status=OutcomeStatus.REJECTED)  # soft reset
    assert len(h.opened) == 1
    return h


def test_lifecycle_transitions() -> None:
    h = ticketed()
    ticket_id = h.opened[0].ticket_id
    for status in (TicketStatus.ACKNOWLEDGED, TicketStatus.DISPATCHED):
        [update] = h._keep(h.engine.ticket_status_changed(ticket_id, status, h.now, by="ops"))
        assert update.ticket.status is status  # type: ignore[union-attr]
    with pytest.raises(InvalidTransition):
        h.engine.ticket_status_changed(ticket_id, TicketStatus.OPEN, h.now)
    h.engine.ticket_status_changed(ticket_id, TicketStatus.RESOLVED, h.now, note="fixed on site")
    assert h.engine.ticket(ticket_id).status is TicketStatus.RESOLVED  # type: ignore[union-attr]
    out = h.engine.ticket_status_changed(ticket_id, TicketStatus.CLOSED, h.now)
    assert out[0].ticket.notes[-1].status is TicketStatus.CLOSED  # type: ignore[union-attr]
    assert h.engine.ticket(ticket_id) is None
    with pytest.raises(UnknownTicket):
        h.engine.ticket_status_changed(ticket_id, TicketStatus.OPEN, h.now)


def test_transition_table_is_the_documented_lifecycle() -> None:
    assert TRANSITIONS[TicketStatus.CLOSED] == frozenset()
    assert TicketStatus.OPEN in TRANSITIONS[TicketStatus.RESOLVED]
    for status in (TicketStatus.OPEN, TicketStatus.ACKNOWLEDGED, TicketStatus.DISPATCHED):
        assert TicketStatus.RESOLVED in TRANSITIONS[status]


def test_closing_ends_the_run_and_a_new_fault_gets_a_new_ticket() -> None:
    h = ticketed()
    first = h.opened[0].ticket_id
    h.engine.ticket_status_changed(first, TicketStatus.CLOSED, h.now, note="duplicate")
    assert h.engine.runs() == []
    h.advance(hours=2)
    h.fault(1, "ReaderFailure")
    h.advance(minutes=5)
    h.complete_diagnosis()
    h.finish(status=OutcomeStatus.REJECTED)
    assert len(h.opened) == 2
    assert h.opened[1].ticket_id != first


def test_fault_back_after_resolution_reopens_the_same_ticket() -> None:
    h = ticketed()
    ticket_id = h.opened[0].ticket_id
    h.status(1, "Available")
    h.advance(minutes=2)
    assert [r.ticket_id for r in h.resolved] == [ticket_id]
    h.advance(minutes=10)
    h.fault(1, "ReaderFailure")  # within the flap window: escalates, reopens
    assert len(h.opened) == 1
    reopened = h.updates[-1].ticket
    assert (reopened.ticket_id, reopened.status) == (ticket_id, TicketStatus.OPEN)
    assert "the fault returned" in [n.text for n in reopened.notes]
    assert reopened.notes[-1].text.startswith("back 0:10:00 after resolved")


def test_operator_resolution_then_fault_returns_is_flapping() -> None:
    h = ticketed()
    ticket_id = h.opened[0].ticket_id
    h.engine.ticket_status_changed(ticket_id, TicketStatus.RESOLVED, h.now)
    h.advance(minutes=5)
    h.fault(1, "ReaderFailure")
    assert len(h.opened) == 1
    assert h.updates[-1].ticket.status is TicketStatus.OPEN


def test_repeat_while_open_adds_an_update_not_a_ticket() -> None:
    h = ticketed()
    h.status(1, "Available")
    h.advance(seconds=30)
    h.fault(1, "ReaderFailure")
    assert len(h.opened) == 1
    assert h.updates[-1].note.startswith("fault reported again")


def test_auto_resolve_off_only_notes_health() -> None:
    h = Harness()
    h.online()
    h.driver("other", 1, "R1", "screen says error 42")
    h.complete_diagnosis()
    [ticket] = h.opened
    assert ticket.reason is TicketReason.STEPS_EXHAUSTED
    h.tx_start(1, "t", meter=0)
    h.tx_end("t", 10_000)
    assert h.resolved == []
    assert h.updates[-1].note.startswith("healthy again")
    assert h.engine.ticket(ticket.ticket_id).status is TicketStatus.OPEN  # type: ignore[union-attr]


def test_ticket_to_dict_is_json_and_round_trips() -> None:
    h = ticketed()
    ticket = h.ticket()
    data = ticket.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert Ticket.from_dict(data) == ticket
    assert data["priority"] == "P4" and data["status"] == "open"
    assert data["steps"][-1]["commands"][0]["type"] == "SoftReset"


def test_transition_sets_resolved_at() -> None:
    h = ticketed()
    ticket = h.ticket()
    later = T0 + timedelta(hours=5)
    resolved = ticket.transition(TicketStatus.RESOLVED, later, by="tech")
    assert resolved.resolved_at == later
    assert resolved.notes[-1].by == "tech"
    assert resolved.transition(TicketStatus.OPEN, later).resolved_at is None


def test_repeat_after_healthy_again_joins_the_open_ticket() -> None:
    h = Harness()
    h.online()
    h.fault(1, "OverCurrentFailure")
    h.finish()  # set inoperative
    h.complete_diagnosis()
    h.status(1, "Available")
    h.advance(minutes=2)
    assert h.finished()[-1].outcome == "healthy_again"  # safety: left to a technician
    h.advance(hours=2)
    h.fault(1, "OverCurrentFailure")
    assert len(h.opened) == 1
    assert h.updates[-1].note == "fault reported again"
    assert h.engine.runs()[0].ticket_id == h.opened[0].ticket_id


def test_sla_breaches_follow_status_and_deadlines() -> None:
    from datetime import UTC, datetime, timedelta

    from diagnostics.model import Priority
    from diagnostics.sla import SlaDeadlines
    from diagnostics.tickets import Ticket, TicketReason, TicketStatus, sla_breaches

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    sla = SlaDeadlines(policy="standard", response_by=t0 + timedelta(hours=1),
                       on_site_by=t0 + timedelta(hours=4), resolution_by=t0 + timedelta(hours=8))
    ticket = Ticket(ticket_id="T1", run_id="R1", station_id="CP1", connector=1,
                    fault_class="x", title="x", status=TicketStatus.OPEN, priority=Priority.P2,
                    tier="field_service", reason=TicketReason.STEPS_EXHAUSTED, opened_at=t0,
                    updated_at=t0, sla=sla)
    assert sla_breaches(ticket, t0) == ()
    assert sla_breaches(ticket, t0 + timedelta(hours=2)) == ("response",)
    assert sla_breaches(ticket, t0 + timedelta(hours=5)) == ("response", "on_site")
    acked = ticket.transition(TicketStatus.ACKNOWLEDGED, t0 + timedelta(minutes=30))
    assert sla_breaches(acked, t0 + timedelta(hours=5)) == ("on_site",)
    dispatched = acked.transition(TicketStatus.DISPATCHED, t0 + timedelta(hours=1))
    assert sla_breaches(dispatched, t0 + timedelta(hours=5)) == ()
    assert sla_breaches(dispatched, t0 + timedelta(hours=9)) == ("resolution",)
    resolved = dispatched.transition(TicketStatus.RESOLVED, t0 + timedelta(hours=9))
    assert sla_breaches(resolved, t0 + timedelta(hours=10)) == ()
