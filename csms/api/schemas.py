"""Response and request bodies of the REST API (they make up the OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")

StationState = Literal["offline", "faulted", "in_use", "unavailable", "available"]
MAX_OFFSET = 2**31 - 1
"""Largest ``offset`` of a list (larger ones overflow the databases' integers: 422)."""
MAX_ID = 2**63 - 1
"""Largest row id there can be (a larger one in a path is unknown: 404, not a query)."""


class Page(BaseModel, Generic[T]):
    """A page of a list: ``total`` counts every match, ``items`` the ones on this page."""

    items: list[T]
    total: int


class ConnectorOut(BaseModel):
    """Latest status of one connector (``evse_id`` 0 on OCPP 1.6)."""

    model_config = ConfigDict(from_attributes=True)

    evse_id: int
    connector_id: int
    status: str
    raw_status: str
    error_code: str | None
    vendor_error_code: str | None
    info: str | None
    updated_at: datetime


class RunBrief(BaseModel):
    """A running diagnosis, as shown next to its station."""

    model_config = ConfigDict(from_attributes=True)

    run_id: str
    fault_class: str
    connector: int
    phase: str
    current_step: str | None
    started_at: datetime


class StationOut(BaseModel):
    """A station with its live state."""

    id: str
    state: StationState
    connected: bool
    protocol: str | None
    vendor: str | None
    model: str | None
    serial_number: str | None
    firmware_version: str | None
    site: str | None
    owner: str | None
    location: str | None
    last_seen_at: datetime | None
    last_boot_at: datetime | None
    last_boot_reason: str | None
    boot_count: int
    connected_node: str | None
    registered_at: datetime
    connectors: list[ConnectorOut]
    active_run: RunBrief | None
    active_runs: list[RunBrief]
    open_tickets: int


class StatusChangeOut(BaseModel):
    """One StatusNotification as recorded."""

    model_config = ConfigDict(from_attributes=True)

    at: datetime
    evse_id: int
    connector_id: int
    status: str
    raw_status: str
    error_code: str | None
    vendor_error_code: str | None
    info: str | None
    station_time: datetime | None


class EventOut(BaseModel):
    """A notable station event (fault, security event, log/firmware progress...)."""

    model_config = ConfigDict(from_attributes=True)

    at: datetime
    kind: str
    code: str | None
    vendor_code: str | None
    component: str | None
    variable: str | None
    evse_id: int | None
    connector_id: int | None
    cleared: bool
    detail: dict[str, Any]


class ConnectionOut(BaseModel):
    """A connect, disconnect or refusal."""

    model_config = ConfigDict(from_attributes=True)

    at: datetime
    kind: str
    protocol: str | None
    remote_address: str | None
    detail: str | None


class TransactionOut(BaseModel):
    """A charging session as recorded."""

    model_config = ConfigDict(from_attributes=True)

    transaction_id: str
    evse_id: int | None
    connector_id: int | None
    id_token: str | None
    meter_start_wh: float | None
    meter_stop_wh: float | None
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    stop_reason: str | None = None


class StepOut(BaseModel):
    """One step of a diagnostics run and its result."""

    index: int
    action: str
    result: str
    started_at: datetime
    finished_at: datetime | None
    outcome: str | None
    station_status: str | None
    detail: str | None


class RunOut(BaseModel):
    """A diagnostics run: where it is and every step done with its result."""

    run_id: str
    station_id: str
    connector: int
    fault_class: str
    detection: str
    phase: str
    current_step: str | None
    outcome: str | None
    ticket_id: str | None
    node: str | None
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    plan: list[str]
    steps: list[StepOut]
    codes: list[str]
    findings: list[dict[str, Any]]
    reports: list[dict[str, Any]]
    safety: bool
    wait_reason: str | None


class SlaOut(BaseModel):
    """The SLA deadlines on a ticket."""

    policy: str
    response_by: datetime
    on_site_by: datetime | None
    resolution_by: datetime
    support: str
    contract: str | None


class TicketOut(BaseModel):
    """A field-service ticket (list form)."""

    ticket_id: str
    run_id: str
    station_id: str
    connector: int
    fault_class: str
    title: str
    status: str
    priority: str
    tier: str
    reason: str
    opened_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    sla: SlaOut | None
    breaches: list[str] = Field(description="SLA deadlines missed now: response, on_site, "
                                            "resolution")


class TicketDetail(TicketOut):
    """A ticket with all its evidence: timeline, codes, steps tried, log findings, reports."""

    station: dict[str, Any] | None
    codes: list[str]
    vendor_codes: list[str]
    components: list[str]
    timeline: list[dict[str, Any]]
    steps: list[dict[str, Any]]
    findings: list[dict[str, Any]]
    reports: list[dict[str, Any]]
    suggested_action: str
    parts: list[str]
    notes: list[dict[str, Any]]


class TicketChange(BaseModel):
    """Body of a ticket transition."""

    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(None, max_length=2000)


class LogFileOut(BaseModel):
    """A diagnostics log a charger uploaded."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    station_id: str
    request_id: int
    protocol: str
    filename_as_sent: str | None
    size: int
    sha256: str
    received_at: datetime
    findings: list[dict[str, Any]]
    download_url: str


class FleetOut(BaseModel):
    """Counts over the whole fleet (see ``FleetSummary``)."""

    stations: int
    online: int
    offline: int
    faulted: int
    station_states: dict[str, int]
    connector_states: dict[str, int]
    open_tickets: dict[str, int]
    active_runs: int
    runs_by_outcome: dict[str, int]
    fixed_remotely: int
    ticketed_runs: int
    remote_fix_share: float | None
