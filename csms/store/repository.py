"""The store: records domain events and answers the reads of the API, engine and tests.

Every method is one short transaction of a few statements, whatever the amount of data (meter
samples are inserted in one batch). Writes are upserts (``INSERT ... ON CONFLICT``), so
concurrent events of one station do not race, and recording the same event twice is harmless
where it matters (transactions, connector status). Stations are created on first sight: an
unknown charger that was let in is registered by its first event.

Reads return detached ORM instances (sessions use ``expire_on_commit=False`` and the models
have no relationships to lazy-load); treat them as read-only snapshots. Lists are newest first.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import enum
import math
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, date, datetime
from typing import Any, NamedTuple, assert_never
from uuid import uuid4

from sqlalchemy import (
    ColumnElement,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from csms.logs import get_logger
from csms.store import postgres_bulk
from csms.store.base import StoreBase
from csms.store.cluster import ClusterQueries
from csms.store.database import Database
from csms.store.engine_state import EngineStateQueries
from csms.store.logfiles import LogFileQueries
from csms.store.models import (
    STATION_ID_MAX_LENGTH,
    ConnectionLogEntry,
    Connector,
    MeterReading,
    Station,
    StationEventRecord,
    StatusHistory,
    TicketRecord,
    Transaction,
)
from csms.store.reports import ReportQueries
from csms.store.runs import OverviewQueries, RunQueries
from csms.store.security import SecurityQueries
from csms.store.tokens import TokenQueries
from csms.store.types import as_utc
from csms.store.webhooks import WebhookQueries
from diagnostics.events import (
    ConnectorStatusChanged,
    DomainEvent,
    FaultReported,
    FirmwareProgress,
    HeartbeatReceived,
    LogUploadProgress,
    MeterValuesReceived,
    SecurityEventReceived,
    StationBooted,
    StationConnected,
    StationDisconnected,
    StationEventNotified,
    StationReported,
    TransactionEnded,
    TransactionStarted,
    TransactionUpdated,
)

log = get_logger("csms.store")

SERVER_RESTART_REASON = "server restarted"
"""Connection log detail of the disconnects written by :meth:`Store.mark_all_disconnected`."""


class Store(
    RunQueries, OverviewQueries, LogFileQueries, TokenQueries, ReportQueries, WebhookQueries,
    ClusterQueries, SecurityQueries, EngineStateQueries, StoreBase,
):
    """Repository over a :class:`~csms.store.database.Database`.

    ``node`` names this CSMS node: connected stations are marked with it, and a disconnect
    recorded here does not undo a newer connection held by another node.
    """

    def __init__(self, db: Database, *, node: str | None = None,
                 write_lanes: int | None = None) -> None:
        self.db = db
        self.node = node
        self._postgres = db.dialect_name == "postgresql"
        """Hot kinds as ``unnest`` statements (:mod:`csms.store.postgres_bulk`)."""
        lanes = POSTGRES_WRITE_LANES if write_lanes is None else max(1, write_lanes)
        self._lanes = [_Lane() for _ in range(lanes if self._postgres else 1)]
        self._touch_statement: Any = None
        self._connector_statement: Any = None
        self._connect_statement: Any = None
        self._disconnect_statement: Any = None
        self._boot_statement: Any = None
        self._statements: dict[str, Any] = {}

    # ------------------------------------------------------------------ events

    async def record(self, *events: DomainEvent) -> None:
        """Persist the events of one message (and move the station's ``last_seen_at``), all
        or none; return once committed.

        Group commit: events recorded while a write is in progress wait for it, then go
        into the next transaction together, so concurrent stations share one commit while
        each caller still returns only after its own events are durable. If a shared
        transaction fails, its callers' events are retried caller by caller, so one bad
        message fails alone. A message that fails stored nothing: the charger's retry after
        its CALLERROR does not store anything twice. When the COMMIT itself fails (on
        PostgreSQL the connection may be lost after the database committed), the database is
        asked what became of the transaction: committed, its callers succeed and nothing is
        written again; aborted, they are retried as above; unknown (the database is away),
        they fail and nothing is retried.

        On PostgreSQL the stations may be spread over ``write_lanes`` lanes (setting
        ``database.write_lanes``, default :data:`POSTGRES_WRITE_LANES`), each with its own
        queue and transaction, so that several group commits are in flight at once (for a
        database whose round trips are long). A station always uses the same lane: its
        events are written in the order they came, and the lanes never write the same rows.
        """
        if events:
            await self._submit(events[0].station_id, events)

    async def _submit(self, station_id: str, events: tuple[DomainEvent, ...],
                      job: _LocalStart | None = None) -> Any:
        """Queue the events and job for the next group commit of the station's lane; the
        job's result once committed."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        lanes = self._lanes
        lane = lanes[hash(station_id) % len(lanes)] if len(lanes) > 1 else lanes[0]
        lane.queue.append(_Write(events, job, future))
        if lane.writer is None or lane.writer.done():
            lane.writer = asyncio.create_task(self._drain(lane))
        # A caller cancelled while waiting cancels only its own future: the batch is written
        # all the same, and the writer skips settling a future that is already done.
        return await future

    @property
    def queued(self) -> int:
        """Messages waiting for a group commit (all lanes)."""
        return sum(len(lane.queue) for lane in self._lanes)

    async def _drain(self, lane: _Lane) -> None:
        while lane.queue:
            batch, lane.queue = lane.queue[:_MAX_BATCH], lane.queue[_MAX_BATCH:]
            transaction: list[int] = []
            results: list[Any] | None = None
            try:
                async with self.db.write_session() as session:
                    results = await self._record_batch(session, batch, transaction)
            except Exception as exc:
                if results is not None and transaction:  # the COMMIT itself failed
                    committed = await self._committed(transaction[0], exc, len(batch))
                    if committed is not False:
                        for write, result in zip(batch, results, strict=True):
                            _settle(write.future, None if committed else exc, result)
                        continue
                if len(batch) == 1:
                    _settle(batch[0].future, exc)
                    continue
                for write in batch:
                    try:
                        async with self.db.write_session() as session:
                            (result,) = await self._record_batch(session, [write])
                    except Exception as exc:
                        _settle(write.future, exc)
                    else:
                        _settle(write.future, None, result)
            else:
                for write, result in zip(batch, results, strict=True):
                    _settle(write.future, None, result)

    async def _committed(self, xid: int, error: Exception, writes: int) -> bool | None:
        """Whether the transaction ``xid``, whose COMMIT failed with ``error``, went through
        all the same (the connection was lost after the database committed, before its
        answer came): ``True`` committed, ``False`` not (its writes may be retried), ``None``
        unknown (the database cannot be asked): then its callers fail and nothing is written
        again (a charger's retry may store a message twice, never lose one)."""
        status: str | None = "in progress"
        for attempt in range(COMMIT_CHECKS):
            try:
                async with (asyncio.timeout(COMMIT_CHECK_TIMEOUT),
                            self.db.engine.connect() as connection):
                    status = await postgres_bulk.commit_status(connection, xid)
            except Exception:  # the database is away (refused, or no answer in time)
                status = None
                break
            if status != "in progress":
                break
            await asyncio.sleep(COMMIT_CHECK_PAUSE * (attempt + 1))
        verdict = {"committed": True, "aborted": False}.get(status or "")
        log.warning("group_commit_outcome_checked", transaction=xid, status=status,
                    writes=writes, error=repr(error)[:200])
        return verdict

    async def _record_batch(self, session: AsyncSession, batch: list[_Write],
                            transaction: list[int] | None = None) -> list[Any]:
        """Write a group-commit batch with as few statements as possible; return the result
        of each write's job (``None`` without one). On PostgreSQL the transaction's id is
        appended to ``transaction``.

        The hot kinds (Heartbeat, StatusNotification, MeterValues) become one multi-row
        statement each for the whole batch: one ``last_seen_at`` upsert per station, one
        connector upsert per connector (its latest status), one status-history insert, one
        meter-reading insert. Transaction starts, updates and ends are one ``executemany``
        per kind: their upserts commute (each fills in only what it knows), so grouping them
        by kind gives the rows that writing them in arrival order would. The other events
        run one by one, in order, in between: station rows are touched first (connectors and
        readings refer to them), transactions are written before the readings that point at
        them.
        """
        touches: dict[str, datetime] = {}
        statuses: list[tuple[ConnectorStatusChanged, datetime]] = []
        meters: list[tuple[MeterValuesReceived, datetime]] = []
        started: list[dict[str, Any]] = []
        updated: list[dict[str, Any]] = []
        ended: list[dict[str, Any]] = []
        others: list[DomainEvent] = []
        for write in batch:
            for event in write.events:
                at = as_utc(event.at)
                previous = touches.get(event.station_id)
                if previous is None or previous < at:
                    touches[event.station_id] = at
                if isinstance(event, HeartbeatReceived):
                    continue
                if isinstance(event, ConnectorStatusChanged):
                    statuses.append((event, at))
                elif isinstance(event, MeterValuesReceived):
                    meters.append((event, at))
                elif isinstance(event, TransactionUpdated):
                    updated.append(_updated_row(event))
                elif isinstance(event, TransactionStarted):
                    started.append(_started_row(event))
                elif isinstance(event, TransactionEnded):
                    ended.append(_ended_row(event))
                else:
                    others.append(event)
            if write.job is not None:
                at = as_utc(write.job.at)
                previous = touches.get(write.job.station_id)
                if previous is None or previous < at:
                    touches[write.job.station_id] = at
        connection = await session.connection()
        if self._postgres:
            xid = await postgres_bulk.touch(connection, touches)
            if transaction is not None:
                transaction.append(xid)
        else:
            await connection.execute(self._touch_stmt(), [
                {"station_id": station_id, "seen_at": at} for station_id, at in touches.items()
            ])
        token = _TOUCHED.set(touches.keys())
        try:
            connects, boots, disconnects, others = _split_connections(others)
            if disconnects:
                await self._bulk_disconnected(connection, disconnects)
            if connects:
                await self._bulk_connected(connection, connects)
            if boots:
                await self._bulk_booted(connection, boots)
            for event in others:
                await self._record(session, event)
        finally:
            _TOUCHED.reset(token)
        if started:
            await connection.execute(self._tx_started_stmt(), started)
        if updated:
            await connection.execute(self._tx_updated_stmt(), updated)
        if ended:
            await connection.execute(self._tx_ended_stmt(), ended)
        results: list[Any] = [None] * len(batch)
        starts = [(n, write.job) for n, write in enumerate(batch) if write.job is not None]
        if starts:
            opened = await self._open_local_transactions(connection, [s for _, s in starts])
            for (n, _), pk in zip(starts, opened, strict=True):
                results[n] = pk
        if statuses or meters:
            await self._bulk_statuses_and_meters(connection, statuses, meters)
        return results

    async def _bulk_connected(self, connection: Any, events: list[StationConnected]) -> None:
        """Connections of distinct stations (a reconnect storm): two statements in all."""
        if self._connect_statement is None:
            at: Any = bindparam("at")
            stmt = self._insert(Station).values(
                id=bindparam("station_id"), registered_at=at, updated_at=at, last_seen_at=at,
                boot_count=0, connected=True, connected_node=bindparam("node"),
                protocol=bindparam("protocol"),
            )
            excluded = stmt.excluded
            self._connect_statement = stmt.on_conflict_do_update(
                index_elements=[Station.id],
                set_={
                    "connected": True,
                    "connected_node": excluded.connected_node,
                    "protocol": excluded.protocol,
                    "updated_at": excluded.updated_at,
                    "last_seen_at": _later(Station.last_seen_at, excluded.last_seen_at),
                },
            )
        rows = [{"station_id": e.station_id, "at": as_utc(e.at), "node": self.node,
                 "protocol": e.protocol} for e in events]
        await connection.execute(self._connect_statement, rows)
        await connection.execute(insert(ConnectionLogEntry), [
            {"station_id": e.station_id, "at": as_utc(e.at), "kind": "connected",
             "protocol": e.protocol, "remote_address": e.remote_address}
            for e in events
        ])

    async def _bulk_disconnected(
        self, connection: Any, events: list[StationDisconnected]
    ) -> None:
        """Disconnections of distinct stations (the first half of a reconnect storm): two
        statements in all. As :meth:`_disconnected`, a newer connection of the station on
        another node is left alone."""
        if self._disconnect_statement is None:
            stmt = update(Station).where(Station.id == bindparam("b_station_id"))
            if self.node is not None:
                stmt = stmt.where(
                    or_(Station.connected_node.is_(None), Station.connected_node == self.node)
                )
            self._disconnect_statement = stmt.values(
                connected=False, connected_node=None, updated_at=bindparam("b_at")
            ).execution_options(synchronize_session=False)
        await connection.execute(self._disconnect_statement, [
            {"b_station_id": e.station_id, "b_at": as_utc(e.at)} for e in events
        ])
        await connection.execute(insert(ConnectionLogEntry), [
            {"station_id": e.station_id, "at": as_utc(e.at), "kind": "disconnected",
             "detail": e.reason}
            for e in events
        ])

    async def _bulk_booted(self, connection: Any, events: list[StationBooted]) -> None:
        """BootNotifications of distinct stations: one statement."""
        if self._boot_statement is None:
            at: Any = bindparam("at")
            fields = ("vendor", "model", "serial_number", "firmware_version",
                      "last_boot_reason")
            stmt = self._insert(Station).values(
                id=bindparam("station_id"), registered_at=at, updated_at=at, last_seen_at=at,
                last_boot_at=at, boot_count=1, connected=False,
                **{name: bindparam(name) for name in fields},
            )
            excluded = stmt.excluded
            update_set: dict[str, Any] = {name: excluded[name] for name in fields}
            update_set |= {
                "last_boot_at": excluded.last_boot_at,
                "boot_count": Station.boot_count + 1,
                "updated_at": excluded.updated_at,
                "last_seen_at": _later(Station.last_seen_at, excluded.last_seen_at),
            }
            self._boot_statement = stmt.on_conflict_do_update(
                index_elements=[Station.id], set_=update_set)
        await connection.execute(self._boot_statement, [
            {"station_id": e.station_id, "at": as_utc(e.at), "vendor": e.vendor,
             "model": e.model, "serial_number": e.serial_number,
             "firmware_version": e.firmware_version, "last_boot_reason": e.reason}
            for e in events
        ])

    def _touch_stmt(self) -> Any:
        """Create the station if needed and move ``last_seen_at`` forward (built once)."""
        if self._touch_statement is None:
            seen: Any = bindparam("seen_at")
            stmt = self._insert(Station).values(
                id=bindparam("station_id"),
                registered_at=seen,
                updated_at=seen,
                last_seen_at=seen,
                boot_count=0,
                connected=False,
            )
            self._touch_statement = stmt.on_conflict_do_update(
                index_elements=[Station.id],
                set_={"last_seen_at": _later(Station.last_seen_at, stmt.excluded.last_seen_at)},
            )
        return self._touch_statement

    def _connector_stmt(self) -> Any:
        """Upsert of a connector's latest status (built once; a late one never wins)."""
        if self._connector_statement is None:
            stmt = self._insert(Connector).values({
                name: bindparam(name) for name in (
                    "station_id", "evse_id", "connector_id", "status", "raw_status",
                    "error_code", "vendor_id", "vendor_error_code", "info", "updated_at")
            })
            excluded = stmt.excluded
            changed = ("status", "raw_status", "error_code", "vendor_id", "vendor_error_code",
                       "info", "updated_at")
            self._connector_statement = stmt.on_conflict_do_update(
                index_elements=[Connector.station_id, Connector.evse_id, Connector.connector_id],
                set_={name: excluded[name] for name in changed},
                where=Connector.updated_at <= excluded.updated_at,
            )
        return self._connector_statement

    async def _bulk_statuses_and_meters(
        self, connection: Any, statuses: list[tuple[ConnectorStatusChanged, datetime]],
        meters: list[tuple[MeterValuesReceived, datetime]],
    ) -> None:
        """Each connector's latest status, the status history and the meter readings: one
        statement on PostgreSQL, three on SQLite."""
        latest, history = _status_rows(statuses)
        readings = _reading_rows(meters)
        if self._postgres:
            await postgres_bulk.statuses_and_readings(connection, latest, history, readings)
            return
        if latest:
            await connection.execute(self._connector_stmt(), latest)
            await connection.execute(insert(StatusHistory), history)
        if readings:
            # Each reading finds its transaction's key (``transaction_pk``) in the insert
            # itself, so a reading of a transaction unknown here gets NULL.
            await connection.execute(self._reading_stmt(), readings)

    def _reading_stmt(self) -> Any:
        """A meter reading whose ``transaction_pk`` is looked up from the station's
        transaction id (built once)."""
        def build() -> Any:
            names = ("station_id", "evse_id", "connector_id", "timestamp", "measurand",
                     "value", "unit", "phase", "context", "location")
            values: dict[str, Any] = {name: bindparam(name) for name in names}
            values["transaction_pk"] = (
                select(Transaction.id)
                .where(Transaction.station_id == bindparam("station_id"),
                       Transaction.transaction_id == bindparam("transaction_id"))
                .scalar_subquery()
            )
            return insert(MeterReading).values(values)

        return self._cached("reading", build)

    async def _record(self, session: AsyncSession, event: DomainEvent) -> None:
        at = as_utc(event.at)
        match event:
            case StationConnected():
                await self._connected(session, event, at)
            case StationDisconnected():
                await self._disconnected(session, event, at)
            case StationBooted():
                await self._booted(session, event, at)
            case HeartbeatReceived():
                await self._touch(session, event.station_id, at)
            case ConnectorStatusChanged():
                await self._bulk_statuses_and_meters(
                    await session.connection(), [(event, at)], [])
            case FaultReported():
                await self._touch(session, event.station_id, at)
                await self._event_row(
                    session,
                    event,
                    at,
                    kind="FaultCleared" if event.cleared else "Fault",
                    component=event.component,
                    variable=event.variable,
                    code=event.code,
                    vendor_code=event.vendor_code,
                    evse_id=event.evse_id,
                    connector_id=event.connector_id,
                    cleared=event.cleared,
                )
            case MeterValuesReceived():
                await self._bulk_statuses_and_meters(await session.connection(), [], [(event, at)])
            case TransactionStarted():
                await (await session.connection()).execute(
                    self._tx_started_stmt(), _started_row(event))
            case TransactionUpdated():
                await (await session.connection()).execute(
                    self._tx_updated_stmt(), _updated_row(event))
            case TransactionEnded():
                await (await session.connection()).execute(
                    self._tx_ended_stmt(), _ended_row(event))
            case LogUploadProgress():
                await self._touch(session, event.station_id, at)
                await self._event_row(session, event, at, kind="LogStatus", code=event.status)
            case FirmwareProgress():
                await self._touch(session, event.station_id, at)
                await self._event_row(session, event, at, kind="FirmwareStatus", code=event.status)
            case SecurityEventReceived():
                await self._touch(session, event.station_id, at)
                await self._event_row(session, event, at, kind="SecurityEvent", code=event.kind)
            case StationEventNotified():
                await self._touch(session, event.station_id, at)
                await self._event_row(
                    session,
                    event,
                    at,
                    kind="NotifyEvent",
                    component=event.component,
                    variable=event.variable,
                    code=event.actual_value,
                    vendor_code=event.tech_code,
                    evse_id=event.evse_id,
                    connector_id=event.connector_id,
                    cleared=event.cleared,
                )
            case StationReported():
                await self._touch(session, event.station_id, at)
                vendor_id = event.payload.get("vendorId")
                await self._event_row(
                    session,
                    event,
                    at,
                    kind=event.kind,
                    code=vendor_id if isinstance(vendor_id, str) else None,
                )
            case _:
                assert_never(event)

    async def begin_local_transaction(
        self,
        *,
        station_id: str,
        at: datetime,
        connector_id: int | None,
        evse_id: int | None,
        id_token: str | None,
        meter_start_wh: float | None,
        started_at: datetime,
    ) -> int:
        """Open a transaction whose id the CSMS assigns (OCPP 1.6 StartTransaction, §4.8).

        The id is the row's key, unique across the database and never reused; it is stored as
        its decimal string in ``transaction_id``, which later events of the station refer to.
        The insert joins the group commit of the other events (it returns once committed).
        """
        result: int = await self._submit(station_id, (), _LocalStart(
            station_id=station_id, at=at, connector_id=connector_id, evse_id=evse_id,
            id_token=id_token, meter_start_wh=meter_start_wh, started_at=started_at))
        return result

    async def record_refused(
        self,
        station_id: str,
        at: datetime,
        reason: str,
        remote_address: str | None = None,
        *,
        protocol: str | None = None,
    ) -> None:
        """Log a refused connection (unknown charger, bad credentials...); no station is made.

        Identities longer than the column are cut, so that even an absurd one is logged.
        """
        async with self.db.write_session() as session:
            await session.execute(
                insert(ConnectionLogEntry).values(
                    station_id=station_id[:STATION_ID_MAX_LENGTH],
                    at=as_utc(at),
                    kind="refused",
                    protocol=protocol,
                    remote_address=remote_address,
                    detail=reason,
                )
            )

    async def mark_all_disconnected(self, node: str | None = None) -> int:
        """Mark stations disconnected (on server start); return how many were connected.

        With ``node``, only the stations held by that node (or by no node in particular).
        Each gets a ``disconnected`` connection log entry.
        """
        now = _now()
        async with self.db.write_session() as session:
            stmt = update(Station).where(Station.connected.is_(True))
            if node is not None:
                stmt = stmt.where(
                    or_(Station.connected_node == node, Station.connected_node.is_(None))
                )
            ids = (
                (
                    await session.execute(
                        stmt.values(connected=False, connected_node=None, updated_at=now)
                        .returning(Station.id)
                        .execution_options(synchronize_session=False)
                    )
                )
                .scalars()
                .all()
            )
            if ids:
                await session.execute(
                    insert(ConnectionLogEntry),
                    [
                        {
                            "station_id": station_id,
                            "at": now,
                            "kind": "disconnected",
                            "detail": SERVER_RESTART_REASON,
                        }
                        for station_id in ids
                    ],
                )
            return len(ids)

    # ------------------------------------------------------------ diagnostics

    async def save_ticket(
        self,
        *,
        ticket_id: str,
        station_id: str,
        connector: int,
        fault_class: str,
        status: str,
        priority: str,
        opened_at: datetime,
        updated_at: datetime,
        data: dict[str, Any],
    ) -> None:
        """Insert or update one ticket as the engine produced it."""
        values = {
            "ticket_id": ticket_id, "station_id": station_id, "connector": connector,
            "fault_class": fault_class, "status": status, "priority": priority,
            "opened_at": as_utc(opened_at), "updated_at": as_utc(updated_at), "data": data,
        }
        async with self.db.write_session() as session:
            stmt = self._insert(TicketRecord).values(**values)
            await session.execute(
                stmt.on_conflict_do_update(
                    index_elements=[TicketRecord.ticket_id],
                    set_={k: stmt.excluded[k] for k in values if k != "ticket_id"},
                )
            )

    async def tickets(
        self, station_id: str | None = None, *, status: str | None = None, limit: int = 100
    ) -> list[TicketRecord]:
        """Tickets, newest first, optionally of one station and one status."""
        query = select(TicketRecord)
        if station_id is not None:
            query = query.where(TicketRecord.station_id == station_id)
        if status is not None:
            query = query.where(TicketRecord.status == status)
        query = query.order_by(TicketRecord.opened_at.desc()).limit(limit)
        async with self.db.read_session() as session:
            return list((await session.scalars(query)).all())

    # ------------------------------------------------------------ credentials

    async def get_station(self, station_id: str) -> Station | None:
        """The station, or ``None`` when it was never seen nor registered."""
        async with self.db.read_session() as session:
            return await session.get(Station, station_id)

    async def ensure_station(self, station_id: str) -> Station:
        """The station, created (registered now) when missing."""
        async with self.db.write_session() as session:
            now = _now()
            stmt = self._insert(Station).values(
                id=station_id, registered_at=now, updated_at=now, boot_count=0, connected=False
            )
            await session.execute(stmt.on_conflict_do_nothing(index_elements=[Station.id]))
            return await self._load_station(session, station_id)

    async def set_password_hash(self, station_id: str, password_hash: str | None) -> None:
        """Set (``None``: remove) the station's password hash, creating the station if needed."""
        await self._upsert_station_fields(station_id, {"password_hash": password_hash})

    async def set_station_details(
        self,
        station_id: str,
        *,
        location: str | None = None,
        owner: str | None = None,
        site: str | None = None,
    ) -> Station:
        """Change descriptive fields, creating the station if needed; return it.

        ``None`` leaves a field unchanged; an empty string clears it.
        """
        given = {"location": location, "owner": owner, "site": site}
        values = {name: value or None for name, value in given.items() if value is not None}
        return await self._upsert_station_fields(station_id, values)

    # ------------------------------------------------------------------ reads

    async def list_stations(self) -> list[Station]:
        """Every station, by id."""
        async with self.db.read_session() as session:
            return list((await session.scalars(select(Station).order_by(Station.id))).all())

    async def connectors(self, station_id: str) -> list[Connector]:
        """The station's connectors by EVSE and connector number."""
        query = (
            select(Connector)
            .where(Connector.station_id == station_id)
            .order_by(Connector.evse_id, Connector.connector_id)
        )
        async with self.db.read_session() as session:
            return list((await session.scalars(query)).all())

    async def status_history(self, station_id: str, *, limit: int = 100) -> list[StatusHistory]:
        """The latest ``limit`` status notifications, newest first."""
        query = (
            select(StatusHistory)
            .where(StatusHistory.station_id == station_id)
            .order_by(StatusHistory.at.desc(), StatusHistory.id.desc())
            .limit(limit)
        )
        async with self.db.read_session() as session:
            return list((await session.scalars(query)).all())

    async def transactions(self, station_id: str, *, limit: int = 100) -> list[Transaction]:
        """The latest ``limit`` transactions, newest first."""
        query = (
            select(Transaction)
            .where(Transaction.station_id == station_id)
            .order_by(Transaction.id.desc())
            .limit(limit)
        )
        async with self.db.read_session() as session:
            return list((await session.scalars(query)).all())

    async def get_transaction(self, station_id: str, transaction_id: str) -> Transaction | None:
        """A transaction by the id the station uses."""
        query = select(Transaction).where(
            Transaction.station_id == station_id, Transaction.transaction_id == transaction_id
        )
        async with self.db.read_session() as session:
            return (await session.scalars(query)).one_or_none()

    async def meter_readings(
        self, station_id: str, transaction_pk: int | None = None, *, limit: int = 1000
    ) -> list[MeterReading]:
        """The latest ``limit`` readings (of one transaction, by its ``Transaction.id``)."""
        query = select(MeterReading).where(MeterReading.station_id == station_id)
        if transaction_pk is not None:
            query = query.where(MeterReading.transaction_pk == transaction_pk)
        query = query.order_by(MeterReading.timestamp.desc(), MeterReading.id.desc()).limit(limit)
        async with self.db.read_session() as session:
            return list((await session.scalars(query)).all())

    async def events(
        self, station_id: str, kind: str | None = None, *, limit: int = 100
    ) -> list[StationEventRecord]:
        """The latest ``limit`` events (of one ``kind``), newest first."""
        query = select(StationEventRecord).where(StationEventRecord.station_id == station_id)
        if kind is not None:
            query = query.where(StationEventRecord.kind == kind)
        query = query.order_by(StationEventRecord.at.desc(), StationEventRecord.id.desc())
        async with self.db.read_session() as session:
            return list((await session.scalars(query.limit(limit))).all())

    async def connection_log(
        self, station_id: str, *, limit: int = 100
    ) -> list[ConnectionLogEntry]:
        """The latest ``limit`` connects, disconnects and refusals, newest first."""
        query = (
            select(ConnectionLogEntry)
            .where(ConnectionLogEntry.station_id == station_id)
            .order_by(ConnectionLogEntry.at.desc(), ConnectionLogEntry.id.desc())
            .limit(limit)
        )
        async with self.db.read_session() as session:
            return list((await session.scalars(query)).all())

    # ---------------------------------------------------------------- helpers

    async def _load_station(self, session: AsyncSession, station_id: str) -> Station:
        query = (
            select(Station)
            .where(Station.id == station_id)
            .execution_options(populate_existing=True)
        )
        return (await session.scalars(query)).one()

    async def _upsert_station_fields(self, station_id: str, values: dict[str, Any]) -> Station:
        now = _now()
        async with self.db.write_session() as session:
            stmt = self._insert(Station).values(
                id=station_id,
                registered_at=now,
                updated_at=now,
                boot_count=0,
                connected=False,
                **values,
            )
            update_set: dict[str, Any] = {name: stmt.excluded[name] for name in values}
            update_set["updated_at"] = stmt.excluded.updated_at
            await session.execute(
                stmt.on_conflict_do_update(index_elements=[Station.id], set_=update_set)
            )
            return await self._load_station(session, station_id)

    async def _touch(self, session: AsyncSession, station_id: str, at: datetime) -> None:
        """Create the station if needed and move ``last_seen_at`` forward to ``at`` (skipped
        for stations the current batch touched already)."""
        if station_id in _TOUCHED.get():
            return
        await session.execute(self._touch_stmt(), {"station_id": station_id, "seen_at": at})

    async def _connected(
        self, session: AsyncSession, event: StationConnected, at: datetime
    ) -> None:
        stmt = self._insert(Station).values(
            id=event.station_id,
            registered_at=at,
            updated_at=at,
            last_seen_at=at,
            boot_count=0,
            connected=True,
            connected_node=self.node,
            protocol=event.protocol,
        )
        excluded = stmt.excluded
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[Station.id],
                set_={
                    "connected": True,
                    "connected_node": excluded.connected_node,
                    "protocol": excluded.protocol,
                    "updated_at": excluded.updated_at,
                    "last_seen_at": _later(Station.last_seen_at, excluded.last_seen_at),
                },
            )
        )
        await session.execute(
            insert(ConnectionLogEntry).values(
                station_id=event.station_id,
                at=at,
                kind="connected",
                protocol=event.protocol,
                remote_address=event.remote_address,
            )
        )

    async def _disconnected(
        self, session: AsyncSession, event: StationDisconnected, at: datetime
    ) -> None:
        await self._touch(session, event.station_id, at)
        stmt = update(Station).where(Station.id == event.station_id)
        if self.node is not None:
            # Another node may hold a newer connection of this station: leave it alone.
            stmt = stmt.where(
                or_(Station.connected_node.is_(None), Station.connected_node == self.node)
            )
        await session.execute(
            stmt.values(connected=False, connected_node=None, updated_at=at).execution_options(
                synchronize_session=False
            )
        )
        await session.execute(
            insert(ConnectionLogEntry).values(
                station_id=event.station_id, at=at, kind="disconnected", detail=event.reason
            )
        )

    async def _booted(self, session: AsyncSession, event: StationBooted, at: datetime) -> None:
        fields = {
            "vendor": event.vendor,
            "model": event.model,
            "serial_number": event.serial_number,
            "firmware_version": event.firmware_version,
            "last_boot_reason": event.reason,
        }
        stmt = self._insert(Station).values(
            id=event.station_id,
            registered_at=at,
            updated_at=at,
            last_seen_at=at,
            last_boot_at=at,
            boot_count=1,
            connected=False,
            **fields,
        )
        excluded = stmt.excluded
        update_set: dict[str, Any] = {name: excluded[name] for name in fields}
        update_set |= {
            "last_boot_at": excluded.last_boot_at,
            "boot_count": Station.boot_count + 1,
            "updated_at": excluded.updated_at,
            "last_seen_at": _later(Station.last_seen_at, excluded.last_seen_at),
        }
        await session.execute(
            stmt.on_conflict_do_update(index_elements=[Station.id], set_=update_set)
        )

    def _cached(self, name: str, build: Callable[[], Any]) -> Any:
        """A statement built once with bind parameters (building one costs more than
        executing it)."""
        stmt = self._statements.get(name)
        if stmt is None:
            stmt = self._statements[name] = build()
        return stmt

    def _tx_upsert(self, columns: tuple[str, ...], update_set: Callable[[Any], dict[str, Any]]
                   ) -> Any:
        stmt = self._insert(Transaction).values(
            {name: bindparam(name) for name in ("station_id", "transaction_id", *columns)})
        return stmt.on_conflict_do_update(
            index_elements=[Transaction.station_id, Transaction.transaction_id],
            set_=update_set(stmt.excluded),
        )

    def _tx_started_stmt(self) -> Any:
        """Idempotent: a repeated start changes nothing; a start that arrives after an update
        or end of the same transaction fills in what was missing."""
        def build() -> Any:
            def update_set(excluded: Any) -> dict[str, Any]:
                values: dict[str, Any] = {
                    name: func.coalesce(getattr(Transaction, name), excluded[name])
                    for name in _STARTED_FIELDS
                }
                values["energy_wh"] = _energy(
                    func.coalesce(Transaction.meter_start_wh, excluded.meter_start_wh),
                    Transaction.meter_stop_wh,
                )
                return values

            return self._tx_upsert(_STARTED_FIELDS, update_set)

        return self._cached("tx_started", build)

    def _tx_updated_stmt(self) -> Any:
        """A known charging state replaces the stored one; an unknown one keeps it."""
        return self._cached("tx_updated", lambda: self._tx_upsert(
            ("charging_state",), lambda excluded: {
                "charging_state": func.coalesce(excluded.charging_state,
                                                Transaction.charging_state)}))

    def _tx_ended_stmt(self) -> Any:
        """The end, and the energy once the start's meter value is known."""
        def build() -> Any:
            def update_set(excluded: Any) -> dict[str, Any]:
                meter_stop = func.coalesce(excluded.meter_stop_wh, Transaction.meter_stop_wh)
                return {
                    "meter_stop_wh": meter_stop,
                    "stopped_at": excluded.stopped_at,
                    "stop_reason": func.coalesce(excluded.stop_reason, Transaction.stop_reason),
                    "energy_wh": _energy(Transaction.meter_start_wh, meter_stop),
                }

            return self._tx_upsert(("meter_stop_wh", "stopped_at", "stop_reason"), update_set)

        return self._cached("tx_ended", build)

    async def _open_local_transactions(self, connection: Any, starts: list[_LocalStart]
                                       ) -> list[int]:
        """The keys of the transactions opened for ``starts``, in order.

        A start the station already opened (the same connector, id tag, meter start and start
        time) gets that transaction's key: a charger sends a StartTransaction again when the
        answer was lost (1.6 §4.8, §3.3 transaction messages are retried), and that is one
        session, not two. So do the same start twice in one batch.

        On PostgreSQL a batch takes one statement whatever its size: each row is looked up,
        or draws its key from the table's sequence and is inserted already named after it; a
        row whose name the station already uses (rare) is left out and opened on its own
        below. On SQLite (no sequence, no network round trip) the batch is looked up in one
        query, and each new start is opened on its own.
        """
        firsts: dict[tuple[Any, ...], _LocalStart] = {}
        for start in starts:
            firsts.setdefault(_start_key(start), start)
        distinct = list(firsts.values())
        if self._postgres:
            found = await postgres_bulk.open_transactions(
                connection, [_start_row(start) for start in distinct])
            keys = [key if done else await self._open_local_transaction(connection, start)
                    for (key, done), start in zip(found, distinct, strict=True)]
        else:
            known = await self._known_local_starts(connection, distinct)
            keys = [known.get(_start_key(start))
                    or await self._open_local_transaction(connection, start)
                    for start in distinct]
        by_start = dict(zip(firsts, keys, strict=True))
        return [by_start[_start_key(start)] for start in starts]

    async def _known_local_starts(self, connection: Any, starts: list[_LocalStart]
                                  ) -> dict[tuple[Any, ...], int]:
        """The keys of the transactions that ``starts`` already opened, by start."""
        stations = {start.station_id for start in starts}
        moments = {as_utc(start.started_at) for start in starts}
        rows = await connection.execute(
            select(Transaction.id, Transaction.station_id,
                   *(getattr(Transaction, name) for name in _STARTED_FIELDS))
            .where(Transaction.station_id.in_(stations), Transaction.started_at.in_(moments))
            .order_by(Transaction.id)
        )
        known: dict[tuple[Any, ...], int] = {}
        for pk, *fields in rows:
            known.setdefault(tuple(fields), pk)
        return known

    async def _open_local_transaction(self, connection: Any, start: _LocalStart) -> int:
        """Insert the transaction under a placeholder id, then name it after its key unless
        the station already uses that number (a row it created itself, a stop for an unknown
        transaction say): then skip the number rather than collide."""
        insert_stmt = self._cached("local_insert", lambda: insert(Transaction).values(
            {name: bindparam(name) for name in ("station_id", "transaction_id",
                                                *_STARTED_FIELDS)},
        ).returning(Transaction.id))
        claim_stmt = self._cached("local_claim", _claim_statement)
        values = _start_row(start)
        while True:
            pk: int = (await connection.execute(
                insert_stmt, {**values, "transaction_id": f"pending-{uuid4().hex}"}
            )).scalar_one()
            claimed = await connection.execute(claim_stmt, {
                "c_pk": pk, "c_station_id": start.station_id, "c_transaction_id": str(pk)})
            if claimed.rowcount == 1:
                return pk
            await connection.execute(delete(Transaction).where(Transaction.id == pk))

    async def _event_row(
        self,
        session: AsyncSession,
        event: DomainEvent,
        at: datetime,
        *,
        kind: str,
        component: str | None = None,
        variable: str | None = None,
        code: str | None = None,
        vendor_code: str | None = None,
        evse_id: int | None = None,
        connector_id: int | None = None,
        cleared: bool = False,
    ) -> None:
        await session.execute(
            insert(StationEventRecord).values(
                station_id=event.station_id,
                at=at,
                kind=kind,
                component=component,
                variable=variable,
                code=code,
                vendor_code=vendor_code,
                evse_id=evse_id,
                connector_id=connector_id,
                cleared=cleared,
                detail=event_detail(event),
            )
        )


def event_detail(event: DomainEvent) -> dict[str, Any]:
    """Every field of ``event`` as JSON-compatible values, plus ``"event"``, its class name."""
    detail: dict[str, Any] = {"event": type(event).__name__}
    for name in _field_names(type(event)):
        detail[name] = _jsonable(getattr(event, name))
    return detail


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    """The dataclass's field names (``dataclasses.fields`` builds a tuple per call)."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


def _jsonable(value: Any) -> Any:
    """``value`` as JSON types: times in ISO 8601 UTC, enums by value, no NaN, no NUL."""
    kind = type(value)
    if kind is str:
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if value is None or kind is bool or kind is int:
        return value
    if isinstance(value, enum.Enum):
        return _jsonable(value.value)
    if isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {name: _jsonable(getattr(value, name)) for name in _field_names(type(value))}
    if isinstance(value, Mapping):
        return {_jsonable(str(key)): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(item) for item in value]
    return str(value)


_NOTHING: frozenset[str] = frozenset()
_TOUCHED: contextvars.ContextVar[Collection[str]] = contextvars.ContextVar(
    "touched", default=_NOTHING)
"""The stations whose ``last_seen_at`` the batch being written (in this task) has moved."""


def _split_connections(
    events: list[DomainEvent],
) -> tuple[
    list[StationConnected], list[StationBooted], list[StationDisconnected], list[DomainEvent]
]:
    """Connections, boots and disconnections that can be written in bulk, and the rest (in
    order).

    Bulk only where order cannot matter: one connection and one boot per station in the
    batch and no disconnection of that station in it, or one disconnection of a station
    and no connection or boot of it (a reconnect stays sequential).
    """
    disconnects: dict[str, StationDisconnected] = {}
    connects: dict[str, StationConnected] = {}
    boots: dict[str, StationBooted] = {}
    repeated: set[str] = set()
    for event in events:
        sid = event.station_id
        if isinstance(event, StationConnected):
            seen: dict[str, Any] = connects
        elif isinstance(event, StationBooted):
            seen = boots
        elif isinstance(event, StationDisconnected):
            seen = disconnects
        else:
            continue
        if sid in seen:
            repeated.add(sid)
        seen[sid] = event
    mixed = disconnects.keys() & (connects.keys() | boots.keys())
    unsafe = repeated | mixed
    bulk_connects = [e for sid, e in connects.items() if sid not in unsafe]
    bulk_boots = [e for sid, e in boots.items() if sid not in unsafe]
    bulk_disconnects = [e for sid, e in disconnects.items() if sid not in unsafe]
    taken = {id(e) for e in (*bulk_connects, *bulk_boots, *bulk_disconnects)}
    rest = [e for e in events if id(e) not in taken]
    return bulk_connects, bulk_boots, bulk_disconnects, rest

_MAX_BATCH = 2000
"""Most messages (``record`` calls) one group-commit transaction takes."""

COMMIT_CHECKS = 5
COMMIT_CHECK_PAUSE = 0.05
COMMIT_CHECK_TIMEOUT = 2.0
"""A COMMIT that failed is looked up at most ``COMMIT_CHECKS`` times, waiting a little
longer each time while the database still shows it in progress; a look-up that gets no
answer within ``COMMIT_CHECK_TIMEOUT`` seconds counts as a database away."""

POSTGRES_WRITE_LANES = 1
"""Group commits in flight at once on PostgreSQL by default (setting
``database.write_lanes``). One is best on one machine: an A/B at 1,000-5,000 msgs/s with
PostgreSQL on loopback gave four lanes more CPU per message (smaller batches), a worse p99
and no more capacity."""


@dataclasses.dataclass(slots=True, eq=False)
class _Lane:
    """One group-commit queue and the task writing it."""

    queue: list[_Write] = dataclasses.field(default_factory=list)
    writer: asyncio.Task[None] | None = None

_STARTED_FIELDS = ("evse_id", "connector_id", "id_token", "meter_start_wh", "started_at")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class _LocalStart:
    """A 1.6 StartTransaction: the transaction the CSMS opens and numbers."""

    station_id: str
    at: datetime
    connector_id: int | None
    evse_id: int | None
    id_token: str | None
    meter_start_wh: float | None
    started_at: datetime


def _start_row(start: _LocalStart) -> dict[str, Any]:
    """The columns a 1.6 start fills: ``station_id`` and :data:`_STARTED_FIELDS`."""
    row: dict[str, Any] = {"station_id": start.station_id}
    row.update((name, getattr(start, name)) for name in _STARTED_FIELDS)
    row["started_at"] = as_utc(start.started_at)
    return row


def _start_key(start: _LocalStart) -> tuple[Any, ...]:
    """What makes a 1.6 start the same one sent again: the columns it fills, in the order
    of :func:`_start_row` (and of the look-up in ``Store._known_local_starts``)."""
    return tuple(_start_row(start).values())


class _Write(NamedTuple):
    """One caller's share of a group commit: its events, perhaps a job whose result it
    waits for, and the future it waits on."""

    events: tuple[DomainEvent, ...]
    job: _LocalStart | None
    future: asyncio.Future[Any]


def _status_rows(statuses: list[tuple[ConnectorStatusChanged, datetime]]
                 ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The connector rows (each connector's latest status; a late one never wins) and the
    status-history rows of a batch's status notifications."""
    latest: dict[tuple[str, int, int], dict[str, Any]] = {}
    history: list[dict[str, Any]] = []
    for event, at in statuses:
        evse_id = event.evse_id if event.evse_id is not None else 0
        values = {
            "station_id": event.station_id, "evse_id": evse_id,
            "connector_id": event.connector_id, "status": event.status.value,
            "raw_status": event.raw_status, "error_code": event.error_code,
            "vendor_error_code": event.vendor_error_code, "info": event.info,
        }
        key = (event.station_id, evse_id, event.connector_id)
        current = latest.get(key)
        if current is None or current["updated_at"] <= at:
            latest[key] = {**values, "vendor_id": event.vendor_id, "updated_at": at}
        history.append({
            **values, "at": at,
            "station_time": as_utc(event.station_time) if event.station_time else None,
        })
    return list(latest.values()), history


def _reading_rows(meters: list[tuple[MeterValuesReceived, datetime]]) -> list[dict[str, Any]]:
    """One row per sampled value, naming its transaction by the station's id for it."""
    return [
        {
            "station_id": event.station_id,
            "transaction_id": event.transaction_id,
            "evse_id": event.evse_id,
            "connector_id": event.connector_id,
            "timestamp": as_utc(sample.timestamp),
            "measurand": sample.measurand,
            "value": sample.value,
            "unit": sample.unit,
            "phase": sample.phase,
            "context": sample.context,
            "location": sample.location,
        }
        for event, _ in meters
        for sample in event.samples
        # SQLite turns NaN into NULL; a NaN reading carries no information anyway.
        if not math.isnan(sample.value)
    ]


def _started_row(event: TransactionStarted) -> dict[str, Any]:
    return {"station_id": event.station_id, "transaction_id": event.transaction_id,
            "evse_id": event.evse_id, "connector_id": event.connector_id,
            "id_token": event.id_token, "meter_start_wh": event.meter_start_wh,
            "started_at": as_utc(event.started_at)}


def _updated_row(event: TransactionUpdated) -> dict[str, Any]:
    return {"station_id": event.station_id, "transaction_id": event.transaction_id,
            "charging_state": event.charging_state}


def _ended_row(event: TransactionEnded) -> dict[str, Any]:
    return {"station_id": event.station_id, "transaction_id": event.transaction_id,
            "meter_stop_wh": event.meter_stop_wh, "stopped_at": as_utc(event.stopped_at),
            "stop_reason": event.reason}


def _claim_statement() -> Any:
    """Rename a placeholder transaction to its key's decimal string unless the station
    already has a transaction of that name (0 rows then)."""
    taken = aliased(Transaction)
    return (
        update(Transaction)
        .where(Transaction.id == bindparam("c_pk"))
        .where(~exists().where(taken.station_id == bindparam("c_station_id"),
                               taken.transaction_id == bindparam("c_transaction_id")))
        .values(transaction_id=bindparam("c_transaction_id"))
        .execution_options(synchronize_session=False)
    )


def _settle(future: asyncio.Future[Any], error: BaseException | None,
            result: Any = None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


def _later(current: Any, new: Any) -> ColumnElement[Any]:
    """``new`` unless ``current`` is already later (``last_seen_at`` never moves back)."""
    return case((or_(current.is_(None), current < new), new), else_=current)


def _energy(meter_start: Any, meter_stop: Any) -> ColumnElement[Any]:
    """``meter_stop - meter_start`` when both are known, else NULL."""
    return case(
        (and_(meter_start.is_not(None), meter_stop.is_not(None)), meter_stop - meter_start),
        else_=None,
    )


def _now() -> datetime:
    return datetime.now(UTC)
