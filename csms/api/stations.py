"""Stations: the fleet summary, the list with filters, one station's detail and history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status

from csms.api.auth import Authenticator, Principal
from csms.api.context import ApiContext
from csms.api.schemas import (
    MAX_OFFSET,
    ConnectionOut,
    ConnectorOut,
    EventOut,
    FleetOut,
    Page,
    RunBrief,
    StationOut,
    StationState,
    StatusChangeOut,
    TransactionOut,
)
from csms.api.tokens import Role
from csms.store.models import Connector, RunRecord, Station

Limit = Annotated[int, Query(ge=1, le=1000, description="page size")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]


def station_out(
    station: Station,
    state: str,
    connectors: list[Connector],
    runs: list[RunRecord],
    open_tickets: int,
) -> StationOut:
    """The API form of a station."""
    briefs = [RunBrief.model_validate(run) for run in runs]
    return StationOut(
        id=station.id, state=state,
        connected=station.connected, protocol=station.protocol, vendor=station.vendor,
        model=station.model, serial_number=station.serial_number,
        firmware_version=station.firmware_version, site=station.site, owner=station.owner,
        location=station.location, last_seen_at=station.last_seen_at,
        last_boot_at=station.last_boot_at, last_boot_reason=station.last_boot_reason,
        boot_count=station.boot_count, connected_node=station.connected_node,
        registered_at=station.registered_at,
        connectors=[ConnectorOut.model_validate(c) for c in connectors],
        active_run=briefs[0] if briefs else None, active_runs=briefs,
        open_tickets=open_tickets,
    )


def router(ctx: ApiContext, auth: Authenticator) -> APIRouter:
    """``/fleet`` and ``/stations...`` (viewer)."""
    api = APIRouter(tags=["stations"])
    viewer = Depends(auth.require(Role.VIEWER))
    store = ctx.store

    async def known(station_id: str) -> Station:
        station = await store.get_station(station_id)
        if station is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown station {station_id!r}")
        return station

    @api.get("/fleet", summary="Fleet summary")
    async def fleet(principal: Principal = viewer) -> FleetOut:
        """Online, offline, faulted, open tickets by priority, share fixed remotely."""
        return FleetOut(**(await store.fleet_summary()).to_dict())

    @api.get("/stations", summary="List stations")
    async def list_stations(
        principal: Principal = viewer,
        state: Annotated[StationState | None, Query(description="one-word state")] = None,
        online: bool | None = None,
        site: str | None = None,
        owner: str | None = None,
        q: Annotated[str | None, Query(max_length=64, description="id contains")] = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> Page[StationOut]:
        """Stations by id, with live state, connectors, running diagnosis, open tickets.

        ``state``: offline (not connected), faulted (a connector Faulted), in_use,
        unavailable, available.
        """
        states = await store.station_states()
        stations = await store.list_stations()
        selected = [
            s for s in stations
            if (state is None or states.get(s.id) == state)
            and (online is None or s.connected == online)
            and (site is None or s.site == site)
            and (owner is None or s.owner == owner)
            and (q is None or q.lower() in s.id.lower())
        ]
        page = selected[offset:offset + limit]
        ids = [s.id for s in page]
        connectors = await store.connectors_of(ids)
        runs = await store.active_runs_of(ids)
        tickets = await store.open_ticket_counts(ids)
        return Page(total=len(selected), items=[
            station_out(s, states.get(s.id, "offline"), connectors[s.id], runs[s.id],
                        tickets.get(s.id, 0))
            for s in page
        ])

    @api.get("/stations/{station_id}", summary="Station detail")
    async def get_station(station_id: str, principal: Principal = viewer) -> StationOut:
        """One station: connectors, status, last seen, firmware, running diagnosis."""
        station = await known(station_id)
        states = await store.station_states()
        connectors = await store.connectors_of([station_id])
        runs = await store.active_runs_of([station_id])
        tickets = await store.open_ticket_counts([station_id])
        return station_out(station, states.get(station_id, "offline"), connectors[station_id],
                           runs[station_id], tickets.get(station_id, 0))

    @api.get("/stations/{station_id}/status-history", summary="Status history")
    async def status_history(
        station_id: str, principal: Principal = viewer, limit: Limit = 100
    ) -> list[StatusChangeOut]:
        """Every StatusNotification, newest first."""
        await known(station_id)
        rows = await store.status_history(station_id, limit=limit)
        return [StatusChangeOut.model_validate(row) for row in rows]

    @api.get("/stations/{station_id}/events", summary="Station events")
    async def events(
        station_id: str, principal: Principal = viewer, kind: str | None = None,
        limit: Limit = 100,
    ) -> list[EventOut]:
        """Faults, security events, log and firmware progress, newest first."""
        await known(station_id)
        rows = await store.events(station_id, kind, limit=limit)
        return [EventOut.model_validate(row) for row in rows]

    @api.get("/stations/{station_id}/connections", summary="Connection log")
    async def connections(
        station_id: str, principal: Principal = viewer, limit: Limit = 100
    ) -> list[ConnectionOut]:
        """Connects, disconnects and refusals, newest first."""
        await known(station_id)
        rows = await store.connection_log(station_id, limit=limit)
        return [ConnectionOut.model_validate(row) for row in rows]

    @api.get("/stations/{station_id}/transactions", summary="Charging sessions")
    async def transactions(
        station_id: str, principal: Principal = viewer, limit: Limit = 100
    ) -> list[TransactionOut]:
        """Charging sessions, newest first."""
        await known(station_id)
        rows = await store.transactions(station_id, limit=limit)
        return [TransactionOut.model_validate(row) for row in rows]

    return api
