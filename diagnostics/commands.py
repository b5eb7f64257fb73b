"""Version-neutral commands to a charging station and their typed outcomes.

One command here is one intent, whatever the OCPP version: ``SoftReset`` is a 1.6
``Reset(Soft)`` or a 2.0.1 ``Reset(OnIdle)``; ``RequestLog`` is a 1.6 ``GetDiagnostics`` or
a 2.0.1 ``GetLog(DiagnosticsLog)``. The protocol adapters in ``csms.protocol`` translate them.

Every command sent yields a :class:`CommandOutcome`, never ``None`` and never an exception:
the diagnostics engine reasons about outcomes, not about transport errors.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class TriggerKind(enum.StrEnum):
    """What a TriggerMessage asks the station to send (1.6 §5.17, 2.0.1 F06)."""

    BOOT_NOTIFICATION = "BootNotification"
    HEARTBEAT = "Heartbeat"
    STATUS_NOTIFICATION = "StatusNotification"
    METER_VALUES = "MeterValues"
    LOG_STATUS = "LogStatusNotification"
    FIRMWARE_STATUS = "FirmwareStatusNotification"


class LogKind(enum.StrEnum):
    """Which log a :class:`RequestLog` asks for (2.0.1 N01 ``LogEnumType``)."""

    DIAGNOSTICS = "DiagnosticsLog"
    SECURITY = "SecurityLog"


@dataclass(frozen=True, slots=True)
class SoftReset:
    """Restart the station's software gracefully (1.6 Reset Soft, 2.0.1 Reset OnIdle).

    ``evse_id`` restricts a 2.0.1 reset to one EVSE; 1.6 ignores it.
    """

    evse_id: int | None = None


@dataclass(frozen=True, slots=True)
class HardReset:
    """Restart the station now (1.6 Reset Hard, 2.0.1 Reset Immediate)."""

    evse_id: int | None = None


@dataclass(frozen=True, slots=True)
class UnlockConnector:
    """Release the connector lock (1.6 UnlockConnector, 2.0.1 F05 UnlockConnector).

    1.6 addresses ``connector_id`` only (numbered across the station); 2.0.1 needs both.
    """

    connector_id: int
    evse_id: int | None = None


@dataclass(frozen=True, slots=True)
class ChangeAvailability:
    """Make the station, an EVSE or a connector operative or inoperative (1.6 §5.2, 2.0.1 G03/G04).

    With neither ``evse_id`` nor ``connector_id`` the whole station is addressed.
    """

    operative: bool
    evse_id: int | None = None
    connector_id: int | None = None


@dataclass(frozen=True, slots=True)
class TriggerMessage:
    """Ask the station to send a message now (1.6 TriggerMessage, 2.0.1 F06)."""

    kind: TriggerKind
    evse_id: int | None = None
    connector_id: int | None = None


@dataclass(frozen=True, slots=True)
class GetConfiguration:
    """Read configuration (1.6 GetConfiguration; 2.0.1 GetVariables).

    Keys are 1.6 key names, or ``Component.Variable`` (``Component[evse].Variable`` with an EVSE)
    for 2.0.1. An empty tuple asks a 1.6 station for every key; 2.0.1 needs explicit keys
    (a full report is GetBaseReport, which arrives as NotifyReport).
    """

    keys: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SetConfiguration:
    """Change one setting (1.6 ChangeConfiguration; 2.0.1 SetVariables)."""

    key: str
    value: str


@dataclass(frozen=True, slots=True)
class RequestLog:
    """Ask the station to upload a log to ``location`` (1.6 GetDiagnostics / GetLog, 2.0.1 N01).

    ``request_id`` ties the later progress notifications to this request.
    """

    location: str
    request_id: int
    kind: LogKind = LogKind.DIAGNOSTICS
    since: datetime | None = None
    until: datetime | None = None
    retries: int | None = None
    retry_interval: int | None = None


@dataclass(frozen=True, slots=True)
class RemoteStart:
    """Start a charging session (1.6 RemoteStartTransaction, 2.0.1 F01 RequestStartTransaction)."""

    id_token: str
    evse_id: int | None = None
    connector_id: int | None = None
    remote_start_id: int = 0


@dataclass(frozen=True, slots=True)
class RemoteStop:
    """Stop a charging session by its transaction id as the station knows it (F03)."""

    transaction_id: str


@dataclass(frozen=True, slots=True)
class ClearCache:
    """Clear the station's authorization cache (1.6 ClearCache, 2.0.1 C11)."""


StationCommand = (
    SoftReset
    | HardReset
    | UnlockConnector
    | ChangeAvailability
    | TriggerMessage
    | GetConfiguration
    | SetConfiguration
    | RequestLog
    | RemoteStart
    | RemoteStop
    | ClearCache
)


class OutcomeStatus(enum.StrEnum):
    """How a command ended, as the engine needs to know it."""

    ACCEPTED = "accepted"
    """The station accepted (Accepted, Unlocked, Scheduled, AcceptedCanceled, ...)."""
    REJECTED = "rejected"
    """The station answered that it will not or could not do it."""
    NOT_SUPPORTED = "not_supported"
    """The station does not support it (NotSupported status or NotImplemented CallError)."""
    CALL_ERROR = "call_error"
    """The station answered with another CallError."""
    TIMEOUT = "timeout"
    """No answer within the call timeout."""
    OFFLINE = "offline"
    """The station is not connected: nothing was sent."""


@dataclass(frozen=True, slots=True)
class CommandOutcome:
    """The typed result of one command.

    ``station_status`` is the raw status the station answered (``Unlocked``, ``Scheduled``...);
    ``data`` holds the rest of the answer in camelCase, as received (configuration keys, file
    name...); ``error_code`` / ``detail`` explain a CallError, timeout or refusal.
    """

    status: OutcomeStatus
    action: str
    station_status: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    error_code: str | None = None
    detail: str | None = None

    @property
    def ok(self) -> bool:
        """True when the station accepted the command."""
        return self.status is OutcomeStatus.ACCEPTED
