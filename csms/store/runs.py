"""Diagnostics runs as the engine shows them, and the fleet summary the dashboard and the
metrics read."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select

from csms.store.base import StoreBase
from csms.store.models import Connector, RunRecord, Station, TicketRecord
from csms.store.types import as_utc

ACTIVE_TICKET_STATUSES = ("open", "acknowledged", "dispatched")
REMOTE_FIX_OUTCOMES = frozenset({"fixed"})
"""Run outcomes that count as "fixed remotely" in the fleet summary."""


@dataclass(slots=True)
class FleetSummary:
    """Counts over the whole fleet (every node's stations: read from the database).

    ``station_states`` buckets each station once: ``offline`` (not connected), else
    ``faulted`` (a connector Faulted), ``charging`` (a connector Occupied/Charging...),
    ``unavailable`` (every connector Unavailable), ``available``.
    ``remote_fix_share`` is runs fixed remotely / (fixed remotely + runs that got a ticket),
    ``None`` before any such run.
    """

    stations: int = 0
    online: int = 0
    offline: int = 0
    faulted: int = 0
    station_states: dict[str, int] = field(default_factory=dict)
    connector_states: dict[str, int] = field(default_factory=dict)
    open_tickets: dict[str, int] = field(default_factory=dict)
    active_runs: int = 0
    runs_by_outcome: dict[str, int] = field(default_factory=dict)
    fixed_remotely: int = 0
    ticketed_runs: int = 0
    remote_fix_share: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible form."""
        return {name: getattr(self, name) for name in self.__slots__}


def station_state(connected: bool, statuses: list[str]) -> str:
    """One word for a station (see :class:`FleetSummary`)."""
    if not connected:
        return "offline"
    if "Faulted" in statuses:
        return "faulted"
    if any(s in ("Occupied", "Charging", "SuspendedEV", "SuspendedEVSE", "Finishing",
                 "Preparing") for s in statuses):
        return "in_use"
    if statuses and all(s == "Unavailable" for s in statuses):
        return "unavailable"
    return "available"


def _run_filters(
    station_id: str | None, active: bool | None, outcome: str | None
) -> list[ColumnElement[bool]]:
    filters: list[ColumnElement[bool]] = []
    if station_id is not None:
        filters.append(RunRecord.station_id == station_id)
    if active is True:
        filters.append(RunRecord.outcome.is_(None))
    elif active is False:
        filters.append(RunRecord.outcome.is_not(None))
    if outcome is not None:
        filters.append(RunRecord.outcome == outcome)
    return filters


class RunQueries(StoreBase):
    """Runs (upserted on every change the engine reports) and fleet counts."""

    async def save_run(
        self,
        *,
        run_id: str,
        station_id: str,
        connector: int,
        fault_class: str,
        detection: str,
        phase: str,
        current_step: str | None,
        outcome: str | None,
        ticket_id: str | None,
        node: str | None,
        started_at: datetime,
        updated_at: datetime,
        data: dict[str, Any],
    ) -> None:
        """Insert or update one run as the engine last showed it."""
        values: dict[str, Any] = {
            "run_id": run_id, "station_id": station_id, "connector": connector,
            "fault_class": fault_class, "detection": detection, "phase": phase,
            "current_step": current_step, "outcome": outcome, "ticket_id": ticket_id,
            "node": node, "started_at": as_utc(started_at), "updated_at": as_utc(updated_at),
            "finished_at": as_utc(updated_at) if outcome is not None else None, "data": data,
        }
        async with self.db.write_session() as session:
            stmt = self._insert(RunRecord).values(**values)
            await session.execute(
                stmt.on_conflict_do_update(
                    index_elements=[RunRecord.run_id],
                    set_={k: stmt.excluded[k] for k in values if k != "run_id"},
                )
            )

    async def runs(
        self,
        station_id: str | None = None,
        *,
        active: bool | None = None,
        outcome: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[RunRecord]:
        """Runs, newest first; ``active`` True: still running, False: finished."""
        query = select(RunRecord).where(*_run_filters(station_id, active, outcome))
        query = query.order_by(RunRecord.started_at.desc(), RunRecord.run_id).limit(limit)
        async with self.db.read_session() as session:
            return list((await session.scalars(query.offset(offset))).all())

    async def count_runs(
        self, station_id: str | None = None, *, active: bool | None = None,
        outcome: str | None = None,
    ) -> int:
        """How many runs :meth:`runs` would list without a limit."""
        query = select(func.count()).select_from(RunRecord).where(
            *_run_filters(station_id, active, outcome))
        async with self.db.read_session() as session:
            return int((await session.execute(query)).scalar_one())

    async def get_run(self, run_id: str) -> RunRecord | None:
        """One run, ``None`` when unknown."""
        async with self.db.read_session() as session:
            return await session.get(RunRecord, run_id)

    async def station_states(self) -> dict[str, str]:
        """Every station's one-word state (see :func:`station_state`), by id."""
        async with self.db.read_session() as session:
            stations = (await session.execute(select(Station.id, Station.connected))).all()
            rows = (await session.execute(
                select(Connector.station_id, Connector.status)
                .where(~((Connector.evse_id == 0) & (Connector.connector_id == 0)))
            )).all()
        statuses: dict[str, list[str]] = {}
        for station_id, status in rows:
            statuses.setdefault(station_id, []).append(status)
        return {sid: station_state(bool(connected), statuses.get(sid, []))
                for sid, connected in stations}

    async def fleet_summary(self) -> FleetSummary:
        """Counts for the dashboard header and the fleet gauges (four queries in all)."""
        states = await self.station_states()
        async with self.db.read_session() as session:
            connector_rows = (await session.execute(
                select(Connector.status, func.count()).group_by(Connector.status)
            )).all()
            ticket_rows = (await session.execute(
                select(TicketRecord.priority, func.count())
                .where(TicketRecord.status.in_(ACTIVE_TICKET_STATUSES))
                .group_by(TicketRecord.priority)
            )).all()
            run_rows = (await session.execute(
                select(RunRecord.outcome, RunRecord.ticket_id.is_not(None), func.count())
                .group_by(RunRecord.outcome, RunRecord.ticket_id.is_not(None))
            )).all()
        summary = FleetSummary()
        counts = Counter(states.values())
        summary.stations = len(states)
        summary.offline = counts.get("offline", 0)
        summary.online = summary.stations - summary.offline
        summary.faulted = counts.get("faulted", 0)
        summary.station_states = dict(sorted(counts.items()))
        summary.connector_states = {status: n for status, n in connector_rows}
        summary.open_tickets = {p: 0 for p in ("P1", "P2", "P3", "P4")}
        summary.open_tickets.update({priority: n for priority, n in ticket_rows})
        by_outcome: Counter[str] = Counter()
        for outcome, ticketed, n in run_rows:
            if outcome is None:
                summary.active_runs += n
            else:
                by_outcome[outcome] += n
            if ticketed:
                summary.ticketed_runs += n
            elif outcome in REMOTE_FIX_OUTCOMES:
                summary.fixed_remotely += n
        summary.runs_by_outcome = dict(sorted(by_outcome.items()))
        decided = summary.fixed_remotely + summary.ticketed_runs
        summary.remote_fix_share = summary.fixed_remotely / decided if decided else None
        return summary


class OverviewQueries(StoreBase):
    """Bulk reads behind the station list (one query each, whatever the fleet size)."""

    async def connectors_of(self, station_ids: list[str]) -> dict[str, list[Connector]]:
        """Connectors of many stations, by station id."""
        result: dict[str, list[Connector]] = {sid: [] for sid in station_ids}
        if not station_ids:
            return result
        query = (
            select(Connector).where(Connector.station_id.in_(station_ids))
            .order_by(Connector.station_id, Connector.evse_id, Connector.connector_id)
        )
        async with self.db.read_session() as session:
            for connector in (await session.scalars(query)).all():
                result[connector.station_id].append(connector)
        return result

    async def credentials_of(self, station_ids: list[str]) -> dict[str, tuple[str | None]]:
        """``{id: (password_hash,)}`` of the known stations among ``station_ids``."""
        async with self.db.read_session() as session:
            rows = (await session.execute(
                select(Station.id, Station.password_hash).where(Station.id.in_(station_ids))
            )).all()
        return {sid: (password_hash,) for sid, password_hash in rows}

    async def stations_by_id(self, station_ids: list[str]) -> list[Station]:
        """The stations with these ids (unknown ones left out)."""
        if not station_ids:
            return []
        async with self.db.read_session() as session:
            query = select(Station).where(Station.id.in_(station_ids))
            return list((await session.scalars(query)).all())

    async def active_runs_of(self, station_ids: list[str]) -> dict[str, list[RunRecord]]:
        """Running diagnostics of many stations, by station id."""
        result: dict[str, list[RunRecord]] = {sid: [] for sid in station_ids}
        if not station_ids:
            return result
        query = (
            select(RunRecord)
            .where(RunRecord.station_id.in_(station_ids), RunRecord.outcome.is_(None))
            .order_by(RunRecord.started_at)
        )
        async with self.db.read_session() as session:
            for run in (await session.scalars(query)).all():
                result[run.station_id].append(run)
        return result

    async def open_ticket_counts(self, station_ids: list[str]) -> dict[str, int]:
        """Active tickets per station."""
        if not station_ids:
            return {}
        query = (
            select(TicketRecord.station_id, func.count())
            .where(TicketRecord.station_id.in_(station_ids),
                   TicketRecord.status.in_(ACTIVE_TICKET_STATUSES))
            .group_by(TicketRecord.station_id)
        )
        async with self.db.read_session() as session:
            return {sid: n for sid, n in (await session.execute(query)).all()}

    async def find_tickets(
        self,
        *,
        station_id: str | None = None,
        status: str | None = None,
        priority: str | None = None,
        active: bool | None = None,
        limit: int | None = 100,
        offset: int = 0,
    ) -> list[TicketRecord]:
        """Tickets with filters, newest first (``limit`` None: all)."""
        query = select(TicketRecord)
        if station_id is not None:
            query = query.where(TicketRecord.station_id == station_id)
        if status is not None:
            query = query.where(TicketRecord.status == status)
        if priority is not None:
            query = query.where(TicketRecord.priority == priority)
        if active is True:
            query = query.where(TicketRecord.status.in_(ACTIVE_TICKET_STATUSES))
        elif active is False:
            query = query.where(TicketRecord.status.not_in(ACTIVE_TICKET_STATUSES))
        query = query.order_by(TicketRecord.opened_at.desc(), TicketRecord.ticket_id)
        if limit is not None:
            query = query.limit(limit).offset(offset)
        async with self.db.read_session() as session:
            return list((await session.scalars(query)).all())

    async def get_ticket(self, ticket_id: str) -> TicketRecord | None:
        """One ticket as last stored."""
        async with self.db.read_session() as session:
            return await session.get(TicketRecord, ticket_id)
