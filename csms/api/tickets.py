"""Field-service tickets: filters (state, priority, station, SLA breach), detail with the
evidence, and the transitions acknowledge, dispatch, resolve, close (operator)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, status

from csms.api.auth import Authenticator, Principal
from csms.api.context import ApiContext
from csms.api.schemas import MAX_OFFSET, Page, TicketChange, TicketDetail, TicketOut
from csms.api.tokens import Role
from csms.logs import get_logger
from diagnostics import InvalidTransition, Ticket, TicketStatus, UnknownTicket, sla_breaches
from diagnostics.serde import encode

log = get_logger("csms.api.tickets")

TicketState = Literal["open", "acknowledged", "dispatched", "resolved", "closed"]
PriorityName = Literal["P1", "P2", "P3", "P4"]
TRANSITIONS: dict[str, TicketStatus] = {
    "acknowledge": TicketStatus.ACKNOWLEDGED,
    "dispatch": TicketStatus.DISPATCHED,
    "resolve": TicketStatus.RESOLVED,
    "close": TicketStatus.CLOSED,
    "reopen": TicketStatus.OPEN,
}


def ticket_out(ticket: Ticket, now: datetime, *, detail: bool = False) -> TicketOut:
    """The API form of a ticket, with the SLA deadlines it has missed at ``now``."""
    data = encode(Ticket, ticket)
    data["breaches"] = list(sla_breaches(ticket, now))
    if detail:
        return TicketDetail.model_validate(data)
    return TicketOut.model_validate(data)


def router(ctx: ApiContext, auth: Authenticator) -> APIRouter:
    """``/tickets...``: reads for viewers, transitions for operators."""
    api = APIRouter(tags=["tickets"])
    viewer = Depends(auth.require(Role.VIEWER))
    operator = Depends(auth.require(Role.OPERATOR))

    @api.get("/tickets", summary="List tickets")
    async def list_tickets(
        principal: Principal = viewer,
        status_: Annotated[TicketState | None, Query(alias="status")] = None,
        priority: PriorityName | None = None,
        station_id: str | None = None,
        active: Annotated[bool | None, Query(description="open, acknowledged or dispatched")]
        = None,
        breached: Annotated[bool | None, Query(description="an SLA deadline is missed now")]
        = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    ) -> Page[TicketOut]:
        """Tickets, newest first."""
        records = await ctx.store.find_tickets(
            station_id=station_id, status=status_, priority=priority, active=active,
            limit=None,
        )
        now = datetime.now(UTC)
        tickets = [ticket_out(Ticket.from_dict(r.data), now) for r in records]
        if breached is not None:
            tickets = [t for t in tickets if bool(t.breaches) == breached]
        return Page(items=tickets[offset:offset + limit], total=len(tickets))

    @api.get("/tickets/{ticket_id}", summary="Ticket detail")
    async def get_ticket(ticket_id: str, principal: Principal = viewer) -> TicketDetail:
        """The ticket with its evidence: status timeline, codes, log findings, every step
        tried and its result, driver reports, notes."""
        record = await ctx.store.get_ticket(ticket_id)
        if record is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown ticket {ticket_id!r}")
        result = ticket_out(Ticket.from_dict(record.data), datetime.now(UTC), detail=True)
        assert isinstance(result, TicketDetail)
        return result

    async def transition(
        ticket_id: str, action: str, change: TicketChange | None, principal: Principal
    ) -> TicketDetail:
        runner = ctx.runner
        if runner is None:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                                "diagnostics are disabled: tickets cannot change")
        note = change.note if change is not None else None
        try:
            ticket = await runner.change_ticket(ticket_id, TRANSITIONS[action], note,
                                                principal.label)
        except UnknownTicket as exc:
            record = await ctx.store.get_ticket(ticket_id)
            if record is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND,
                                    f"unknown ticket {ticket_id!r}") from exc
            raise HTTPException(status.HTTP_409_CONFLICT,
                                f"ticket {ticket_id} is {record.status}: it cannot change "
                                "any more") from exc
        except InvalidTransition as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
        log.info("ticket_transition", ticket_id=ticket_id, action=action,
                 by=principal.label, status=str(ticket.status))
        result = ticket_out(ticket, datetime.now(UTC), detail=True)
        assert isinstance(result, TicketDetail)
        return result

    for action in TRANSITIONS:
        def make(action: str = action) -> None:
            @api.post(f"/tickets/{{ticket_id}}/{action}", summary=f"{action.title()} a ticket",
                      name=f"ticket_{action}")
            async def change(
                ticket_id: str, change: TicketChange | None = None,
                principal: Principal = operator,
            ) -> TicketDetail:
                return await transition(ticket_id, action, change, principal)

            change.__doc__ = (f"{action.title()} the ticket (operator), with an optional "
                              "note. 409 when its lifecycle does not allow it.")

        make()

    return api
