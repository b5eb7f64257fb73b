"""The tables of the CSMS, as SQLAlchemy 2 typed models.

Times are :class:`~csms.store.types.UTCDateTime` (aware UTC on both databases). Values a
station sent are :class:`~csms.store.types.StationText`: unbounded, because a non-conformant
charger must not make its message unrecordable. Append-only tables (history, readings, events,
connection log) have 64-bit keys on PostgreSQL (SQLite's rowid is 64-bit already).

There are no ORM relationships on purpose: the store returns detached instances, and a lazy
load on a detached instance would fail; every read is one explicit query instead.

Changing a model means writing a migration in ``migrations/versions`` (the test suite checks
that the migrations and these models agree).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from csms.store.types import StationText, UTCDateTime

STATION_ID_MAX_LENGTH = 64
"""Longest charge point identity stored (OCPP allows 48; some vendors use more)."""

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

BigIntegerKey = BigInteger().with_variant(Integer(), "sqlite")
"""64-bit surrogate key that is still SQLite's autoincrementing rowid alias."""


class Base(DeclarativeBase):
    """Declarative base with constraint names that migrations can refer to."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


def _station_fk() -> ForeignKey:
    return ForeignKey("stations.id", ondelete="CASCADE")


class Station(Base):
    """A charging station, known by its charge point identity (the websocket URL path)."""

    __tablename__ = "stations"

    id: Mapped[str] = mapped_column(String(STATION_ID_MAX_LENGTH), primary_key=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    security_profile: Mapped[int | None] = mapped_column(Integer)
    """OCPP security profile (0 to 3) the station must connect with; ``None``: the default."""
    vendor: Mapped[str | None] = mapped_column(StationText())
    model: Mapped[str | None] = mapped_column(StationText())
    serial_number: Mapped[str | None] = mapped_column(StationText())
    firmware_version: Mapped[str | None] = mapped_column(StationText())
    protocol: Mapped[str | None] = mapped_column(String(16))
    """``"1.6"`` or ``"2.0.1"``, from the last connection."""
    location: Mapped[str | None] = mapped_column(StationText())
    owner: Mapped[str | None] = mapped_column(StationText())
    site: Mapped[str | None] = mapped_column(StationText())
    last_boot_at: Mapped[datetime | None]
    last_boot_reason: Mapped[str | None] = mapped_column(StationText())
    boot_count: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    last_seen_at: Mapped[datetime | None]
    """CSMS time of the latest event from the station (never moves backwards)."""
    connected: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    connected_node: Mapped[str | None] = mapped_column(String(255))
    """The CSMS node holding the websocket, when connected."""
    registered_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    """Last change of registration, boot, credential, detail or connection data; heartbeats
    and other traffic only move ``last_seen_at``."""


class Connector(Base):
    """Latest status of one connector.

    ``evse_id`` is 0 for OCPP 1.6, whose connectors are numbered across the station
    (connector 0 being the station itself); OCPP 2.0.1 rows carry the EVSE number.
    """

    __tablename__ = "connectors"
    __table_args__ = (UniqueConstraint("station_id", "evse_id", "connector_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    station_id: Mapped[str] = mapped_column(_station_fk())
    evse_id: Mapped[int] = mapped_column(Integer)
    connector_id: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(32))
    """A :class:`~diagnostics.events.ConnectorStatus` value."""
    raw_status: Mapped[str] = mapped_column(StationText())
    error_code: Mapped[str | None] = mapped_column(StationText())
    vendor_id: Mapped[str | None] = mapped_column(StationText())
    vendor_error_code: Mapped[str | None] = mapped_column(StationText())
    info: Mapped[str | None] = mapped_column(StationText())
    updated_at: Mapped[datetime]


class StatusHistory(Base):
    """Every status notification, append-only (same ``evse_id`` convention as connectors)."""

    __tablename__ = "status_history"
    __table_args__ = (Index(None, "station_id", "at"),)

    id: Mapped[int] = mapped_column(BigIntegerKey, primary_key=True)
    station_id: Mapped[str] = mapped_column(_station_fk())
    evse_id: Mapped[int] = mapped_column(Integer)
    connector_id: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(32))
    raw_status: Mapped[str] = mapped_column(StationText())
    error_code: Mapped[str | None] = mapped_column(StationText())
    vendor_error_code: Mapped[str | None] = mapped_column(StationText())
    info: Mapped[str | None] = mapped_column(StationText())
    station_time: Mapped[datetime | None]
    at: Mapped[datetime]


class Transaction(Base):
    """A charging session.

    ``transaction_id`` is the id as the station uses it (for 1.6 the decimal string of ``id``,
    which the CSMS assigned). A row whose ``started_at`` is NULL was created by an update or
    end for a transaction whose start was never received.
    """

    __tablename__ = "transactions"
    __table_args__ = (
        UniqueConstraint("station_id", "transaction_id"),
        # A resent 1.6 StartTransaction is looked up by its start (Store.begin_local_transaction).
        Index(None, "station_id", "started_at"),
        # Ids are handed to 1.6 stations: never reuse one, even after deletes.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    station_id: Mapped[str] = mapped_column(_station_fk())
    transaction_id: Mapped[str] = mapped_column(String(64))
    evse_id: Mapped[int | None] = mapped_column(Integer)
    connector_id: Mapped[int | None] = mapped_column(Integer)
    id_token: Mapped[str | None] = mapped_column(StationText())
    meter_start_wh: Mapped[float | None] = mapped_column(Float)
    meter_stop_wh: Mapped[float | None] = mapped_column(Float)
    started_at: Mapped[datetime | None]
    stopped_at: Mapped[datetime | None]
    stop_reason: Mapped[str | None] = mapped_column(StationText())
    charging_state: Mapped[str | None] = mapped_column(StationText())
    energy_wh: Mapped[float | None] = mapped_column(Float)
    """``meter_stop_wh - meter_start_wh`` once both are known."""


class MeterReading(Base):
    """One sampled value; ``transaction_pk`` links it to :class:`Transaction` when known."""

    __tablename__ = "meter_readings"
    __table_args__ = (Index(None, "station_id", "timestamp"), Index(None, "transaction_pk"))

    id: Mapped[int] = mapped_column(BigIntegerKey, primary_key=True)
    station_id: Mapped[str] = mapped_column(_station_fk())
    transaction_pk: Mapped[int | None] = mapped_column(
        ForeignKey("transactions.id", ondelete="SET NULL")
    )
    evse_id: Mapped[int | None] = mapped_column(Integer)
    connector_id: Mapped[int | None] = mapped_column(Integer)
    timestamp: Mapped[datetime]
    measurand: Mapped[str] = mapped_column(StationText())
    value: Mapped[float] = mapped_column(Float)
    unit: Mapped[str | None] = mapped_column(StationText())
    phase: Mapped[str | None] = mapped_column(StationText())
    context: Mapped[str | None] = mapped_column(StationText())
    location: Mapped[str | None] = mapped_column(StationText())


class StationEventRecord(Base):
    """A notable event (fault, security event, log/firmware progress, report...).

    ``detail`` holds every field of the domain event (plus ``"event"``, its class name).
    """

    __tablename__ = "events"
    __table_args__ = (Index(None, "station_id", "at"),)

    id: Mapped[int] = mapped_column(BigIntegerKey, primary_key=True)
    station_id: Mapped[str] = mapped_column(_station_fk())
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(64))
    component: Mapped[str | None] = mapped_column(StationText())
    variable: Mapped[str | None] = mapped_column(StationText())
    code: Mapped[str | None] = mapped_column(StationText())
    vendor_code: Mapped[str | None] = mapped_column(StationText())
    evse_id: Mapped[int | None] = mapped_column(Integer)
    connector_id: Mapped[int | None] = mapped_column(Integer)
    cleared: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    detail: Mapped[dict[str, Any]]


class ConnectionLogEntry(Base):
    """Connects, disconnects and refusals; no foreign key, refused unknown chargers are kept."""

    __tablename__ = "connection_log"
    __table_args__ = (Index(None, "station_id", "at"),)

    id: Mapped[int] = mapped_column(BigIntegerKey, primary_key=True)
    station_id: Mapped[str] = mapped_column(String(STATION_ID_MAX_LENGTH))
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(16))
    """``"connected"``, ``"disconnected"`` or ``"refused"``."""
    protocol: Mapped[str | None] = mapped_column(String(16))
    remote_address: Mapped[str | None] = mapped_column(StationText())
    detail: Mapped[str | None] = mapped_column(StationText())
    """Why it disconnected or was refused."""


class EngineStateRecord(Base):
    """The diagnostics engine's persisted state, one row per node (write-ahead of commands)."""

    __tablename__ = "engine_state"

    node: Mapped[str] = mapped_column(String(255), primary_key=True)
    state: Mapped[str] = mapped_column(Text())
    """The core of the state (``StateDelta.core``; the whole ``EngineState.to_json()`` when
    written before station shards existed)."""
    updated_at: Mapped[datetime]


class EngineStateShardRecord(Base):
    """One station's part of the engine state (:class:`diagnostics.state.StationShard`),
    written only when the station changed; ``engine_state`` holds the rest (the core)."""

    __tablename__ = "engine_state_shards"

    state_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    """The ``engine_state.node`` the shard belongs to."""
    station_id: Mapped[str] = mapped_column(String(STATION_ID_MAX_LENGTH), primary_key=True)
    data: Mapped[str] = mapped_column(Text())
    updated_at: Mapped[datetime]


class TicketRecord(Base):
    """A field-service ticket as the engine last produced it, for queries and the API.

    ``data`` is the whole ticket (evidence, steps, SLA deadlines), encoded by
    :mod:`diagnostics.serde`; the other columns are copies for filtering.
    """

    __tablename__ = "tickets"
    __table_args__ = (Index(None, "station_id", "opened_at"), Index(None, "status"))

    ticket_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    station_id: Mapped[str] = mapped_column(String(STATION_ID_MAX_LENGTH))
    connector: Mapped[int] = mapped_column(Integer)
    fault_class: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(32))
    priority: Mapped[str] = mapped_column(String(8))
    opened_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    data: Mapped[dict[str, Any]]


class RunRecord(Base):
    """A diagnostics run as the engine last showed it: running ones and finished ones.

    ``data`` is the whole :class:`~diagnostics.actions.RunView` (steps with their results,
    findings, reports) encoded by :mod:`diagnostics.serde`; the other columns are copies for
    filtering. ``node`` is the CSMS node whose engine owns the run.
    """

    __tablename__ = "diagnostics_runs"
    __table_args__ = (Index(None, "station_id", "started_at"), Index(None, "outcome"))

    run_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    station_id: Mapped[str] = mapped_column(String(STATION_ID_MAX_LENGTH))
    connector: Mapped[int] = mapped_column(Integer)
    fault_class: Mapped[str] = mapped_column(String(128))
    detection: Mapped[str] = mapped_column(String(64))
    phase: Mapped[str] = mapped_column(String(64))
    current_step: Mapped[str | None] = mapped_column(String(128))
    outcome: Mapped[str | None] = mapped_column(String(64))
    """``None`` while the run is active."""
    ticket_id: Mapped[str | None] = mapped_column(String(255))
    node: Mapped[str | None] = mapped_column(String(255))
    started_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    data: Mapped[dict[str, Any]]


class ApiToken(Base):
    """An API token: only the SHA-256 of the secret is kept (the secret is shown once)."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    """Public token id (the part before the dot in ``csms_<id>.<secret>``)."""
    name: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    """``viewer``, ``operator`` or ``admin``."""
    secret_hash: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class DriverReportRecord(Base):
    """A driver's fault report; the tracking token is kept as a SHA-256 only."""

    __tablename__ = "driver_reports"
    __table_args__ = (Index(None, "station_id", "created_at"),)

    report_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    station_id: Mapped[str] = mapped_column(String(STATION_ID_MAX_LENGTH))
    connector: Mapped[int | None] = mapped_column(Integer)
    category: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text())
    contact: Mapped[str | None] = mapped_column(Text())
    tracking_hash: Mapped[str] = mapped_column(String(128), unique=True)
    status: Mapped[str] = mapped_column(String(32))
    """``received``, ``checking_remotely``, ``fixed_remotely``, ``technician_dispatched``,
    ``resolved``."""
    run_id: Mapped[str | None] = mapped_column(String(255))
    ticket_id: Mapped[str | None] = mapped_column(String(255))
    photos: Mapped[dict[str, Any]]
    """``{"items": [{"name", "content_type", "size", "path"}]}``."""
    history: Mapped[dict[str, Any]]
    """``{"items": [{"status", "at"}], "refiled": n}``: every status change, oldest first."""
    client_address: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class LogFileRecord(Base):
    """A diagnostics log a charger uploaded (the file is under ``data_dir/uploads``)."""

    __tablename__ = "log_files"
    __table_args__ = (Index(None, "station_id", "received_at"),)

    id: Mapped[int] = mapped_column(BigIntegerKey, primary_key=True)
    station_id: Mapped[str] = mapped_column(String(STATION_ID_MAX_LENGTH))
    request_id: Mapped[int] = mapped_column(Integer)
    protocol: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(Text())
    filename_as_sent: Mapped[str | None] = mapped_column(StationText())
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    findings: Mapped[dict[str, Any]]
    """``{"items": [...]}``: the signatures that matched, once analysed."""
    received_at: Mapped[datetime]


class WebhookDelivery(Base):
    """One ticket event to deliver to the field-service webhook (outbox, retried)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index(None, "status", "next_attempt_at"), Index(None, "ticket_id"))

    id: Mapped[int] = mapped_column(BigIntegerKey, primary_key=True)
    ticket_id: Mapped[str] = mapped_column(String(255))
    event: Mapped[str] = mapped_column(String(32))
    """``ticket.opened``, ``ticket.updated`` or ``ticket.resolved``."""
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16))
    """``pending``, ``delivered``, ``parked`` or ``skipped`` (by an operator)."""
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text())
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]


class ClusterLease(Base):
    """A named lease held by one node until ``expires_at`` (the diagnostics leader)."""

    __tablename__ = "cluster_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))
    acquired_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class ClusterNode(Base):
    """A CSMS node and when it last said it is alive."""

    __tablename__ = "cluster_nodes"

    node: Mapped[str] = mapped_column(String(255), primary_key=True)
    started_at: Mapped[datetime]
    seen_at: Mapped[datetime]
    info: Mapped[dict[str, Any]]
