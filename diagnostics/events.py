"""Version-neutral events about charging stations.

The protocol adapters turn what a station says into these events: a 1.6 StatusNotification
with an error code and a 2.0.1 NotifyEvent ``Problem`` are both a :class:`FaultReported`.
The persistence layer records them and the diagnostics engine reacts to them. Times are
timezone-aware UTC datetimes; the CSMS receive time is ``at``, the station's own clock (when it
sent one) is kept separately because station clocks drift.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class ConnectorStatus(enum.StrEnum):
    """Connector states of both versions (1.6 ChargePointStatus, 2.0.1 ConnectorStatusEnumType).

    ``UNKNOWN`` stands for a value outside both enumerations; the raw string is kept beside it.
    """

    AVAILABLE = "Available"
    PREPARING = "Preparing"
    CHARGING = "Charging"
    SUSPENDED_EV = "SuspendedEV"
    SUSPENDED_EVSE = "SuspendedEVSE"
    FINISHING = "Finishing"
    RESERVED = "Reserved"
    UNAVAILABLE = "Unavailable"
    FAULTED = "Faulted"
    OCCUPIED = "Occupied"
    UNKNOWN = "Unknown"

    @classmethod
    def parse(cls, raw: str) -> ConnectorStatus:
        """Map a raw status string to a member, ``UNKNOWN`` when it is not one."""
        try:
            return cls(raw)
        except ValueError:
            return cls.UNKNOWN


class LogUploadStatus(enum.StrEnum):
    """Log upload progress, merged from 1.6 DiagnosticsStatus and UploadLogStatusEnumType."""

    IDLE = "Idle"
    UPLOADING = "Uploading"
    UPLOADED = "Uploaded"
    FAILED = "UploadFailed"
    BAD_MESSAGE = "BadMessage"
    NOT_SUPPORTED = "NotSupportedOperation"
    PERMISSION_DENIED = "PermissionDenied"
    ACCEPTED_CANCELED = "AcceptedCanceled"
    UNKNOWN = "Unknown"

    @classmethod
    def parse(cls, raw: str) -> LogUploadStatus:
        """Map a 1.6 or 2.0.1 status string (``UploadFailure`` too) to a member."""
        if raw == "UploadFailure":
            return cls.FAILED
        try:
            return cls(raw)
        except ValueError:
            return cls.UNKNOWN


@dataclass(frozen=True, slots=True, kw_only=True)
class StationEvent:
    """Base of every event: which station, and when the CSMS received it."""

    station_id: str
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class StationConnected(StationEvent):
    """The station opened its websocket (OCPP-J 1.6 §3, 2.0.1 Part 4 §3)."""

    protocol: str
    remote_address: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StationDisconnected(StationEvent):
    """The websocket closed; ``reason`` says why (replaced, closed by station, ping timeout...)."""

    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StationBooted(StationEvent):
    """BootNotification (1.6 §4.2, 2.0.1 B01)."""

    vendor: str
    model: str
    serial_number: str | None = None
    firmware_version: str | None = None
    reason: str | None = None
    """2.0.1 BootReasonEnumType; ``None`` for 1.6, which does not say."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HeartbeatReceived(StationEvent):
    """Heartbeat (1.6 §4.6, 2.0.1 G02)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectorStatusChanged(StationEvent):
    """StatusNotification (1.6 §4.9, 2.0.1 G01).

    1.6 numbers connectors across the station (``evse_id`` is ``None``; connector 0 is the
    station itself). ``error_code`` is the 1.6 errorCode as sent (``NoError`` when fine, raw
    even when non-conformant); 2.0.1 has none.
    """

    connector_id: int
    evse_id: int | None
    status: ConnectorStatus
    raw_status: str
    error_code: str | None = None
    vendor_id: str | None = None
    vendor_error_code: str | None = None
    info: str | None = None
    station_time: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultReported(StationEvent):
    """A fault the station reported, whatever the version.

    From a 1.6 StatusNotification whose errorCode is not ``NoError`` (``code`` = errorCode,
    ``vendor_code`` = vendorErrorCode), or a 2.0.1 NotifyEvent on a problem variable
    (``component``/``variable``, ``vendor_code`` = techCode). ``cleared`` is true when the
    station reports that the fault has ended.
    """

    connector_id: int | None
    evse_id: int | None
    code: str
    component: str | None = None
    variable: str | None = None
    vendor_id: str | None = None
    vendor_code: str | None = None
    info: str | None = None
    cleared: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class MeterSample:
    """One sampled value (1.6 SampledValue, 2.0.1 SampledValueType)."""

    timestamp: datetime
    value: float
    measurand: str = "Energy.Active.Import.Register"
    unit: str | None = None
    phase: str | None = None
    context: str | None = None
    location: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MeterValuesReceived(StationEvent):
    """MeterValues (1.6 §4.7, 2.0.1 J02), or the meter values inside a transaction message."""

    connector_id: int | None
    evse_id: int | None
    transaction_id: str | None
    samples: tuple[MeterSample, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionStarted(StationEvent):
    """1.6 StartTransaction, 2.0.1 TransactionEvent(Started).

    ``transaction_id`` is the id as the station uses it: assigned by the CSMS in 1.6,
    by the station in 2.0.1.
    """

    transaction_id: str
    connector_id: int | None
    evse_id: int | None
    id_token: str | None
    meter_start_wh: float | None
    started_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionUpdated(StationEvent):
    """2.0.1 TransactionEvent(Updated): charging state changes during a session."""

    transaction_id: str
    charging_state: str | None = None
    trigger_reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionEnded(StationEvent):
    """1.6 StopTransaction, 2.0.1 TransactionEvent(Ended)."""

    transaction_id: str
    meter_stop_wh: float | None
    stopped_at: datetime
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LogUploadProgress(StationEvent):
    """1.6 DiagnosticsStatusNotification or LogStatusNotification; 2.0.1 N01 LogStatusNotification.

    ``request_id`` is ``None`` for 1.6 DiagnosticsStatusNotification, which carries none.
    """

    status: LogUploadStatus
    raw_status: str
    request_id: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FirmwareProgress(StationEvent):
    """FirmwareStatusNotification (both versions) and 1.6 SignedFirmwareStatusNotification."""

    status: str
    request_id: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SecurityEventReceived(StationEvent):
    """SecurityEventNotification (1.6 security extension, 2.0.1 A04)."""

    kind: str
    tech_info: str | None = None
    station_time: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StationEventNotified(StationEvent):
    """One 2.0.1 NotifyEvent ``EventDataType`` (N07), recorded whether or not it is a fault."""

    event_id: int
    component: str
    variable: str
    actual_value: str
    trigger: str
    evse_id: int | None = None
    connector_id: int | None = None
    event_type: str | None = None
    tech_code: str | None = None
    tech_info: str | None = None
    cleared: bool = False
    station_time: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StationReported(StationEvent):
    """A report or message recorded as received: NotifyReport, NotifyMonitoringReport, DataTransfer.

    ``kind`` is the OCPP action; ``payload`` the message payload as sent (camelCase).
    """

    kind: str
    payload: dict[str, Any] = field(default_factory=dict)


DomainEvent = (
    StationConnected
    | StationDisconnected
    | StationBooted
    | HeartbeatReceived
    | ConnectorStatusChanged
    | FaultReported
    | MeterValuesReceived
    | TransactionStarted
    | TransactionUpdated
    | TransactionEnded
    | LogUploadProgress
    | FirmwareProgress
    | SecurityEventReceived
    | StationEventNotified
    | StationReported
)


# --- External triggers (issue 3): not station messages, but inputs of the diagnostics engine.
# They come from the REST API (operations issue); they are not part of ``DomainEvent``.


class DriverCategory(enum.StrEnum):
    """What a driver says is wrong (the categories driver apps offer)."""

    WONT_START = "wont_start"
    CANT_STOP_CABLE_STUCK = "cant_stop_cable_stuck"
    PAYMENT = "payment"
    MISSING_SESSION = "missing_session"
    PHYSICAL_DAMAGE = "physical_damage"
    DISPLAY_OR_READER = "display_or_reader"
    OTHER = "other"

    @classmethod
    def parse(cls, raw: str) -> DriverCategory:
        """Map a raw category to a member, ``OTHER`` when it is not one."""
        try:
            return cls(raw)
        except ValueError:
            return cls.OTHER


@dataclass(frozen=True, slots=True, kw_only=True)
class DriverFaultReported(StationEvent):
    """A driver reported a problem with a station (app, phone, e-mail).

    ``connector_id`` is the connector as the driver sees it (1.6 connector id, 2.0.1 EVSE id),
    ``None`` when not known; ``report_id`` is the API's id of the report.
    """

    connector_id: int | None
    category: DriverCategory
    text: str
    report_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DiagnosisRequested(StationEvent):
    """An operator asked to diagnose a station (or one connector) now."""

    connector_id: int | None
    requested_by: str


ExternalTrigger = DriverFaultReported | DiagnosisRequested
"""Inputs of the engine that do not come from the station."""

EngineInput = DomainEvent | ExternalTrigger
"""Everything ``DiagnosticsEngine.observe`` accepts."""
