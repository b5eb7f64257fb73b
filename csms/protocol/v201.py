"""OCPP 2.0.1 adapter: frames to events, commands to frames.

Requirement ids (B01, G01, N07...) refer to OCPP 2.0.1 Part 2, "Specification".
"""

from __future__ import annotations

import itertools
import re
import time
from typing import Any

from ocpp.routing import on
from ocpp.v201 import ChargePoint as LibraryChargePoint
from ocpp.v201 import call, call_result
from ocpp.v201 import datatypes as dt

from csms.protocol.common import (
    classify,
    energy_wh,
    iso,
    meter_samples,
    parse_time,
    refused,
    run_command,
    utc_now,
)
from csms.protocol.connection import StationConnection
from diagnostics.commands import (
    ChangeAvailability,
    ClearCache,
    CommandOutcome,
    GetConfiguration,
    HardReset,
    RemoteStart,
    RemoteStop,
    RequestLog,
    SetConfiguration,
    SoftReset,
    StationCommand,
    TriggerKind,
    TriggerMessage,
    UnlockConnector,
)
from diagnostics.events import (
    ConnectorStatus,
    ConnectorStatusChanged,
    DomainEvent,
    FaultReported,
    FirmwareProgress,
    HeartbeatReceived,
    LogUploadProgress,
    LogUploadStatus,
    MeterValuesReceived,
    SecurityEventReceived,
    StationBooted,
    StationEventNotified,
    StationReported,
    TransactionEnded,
    TransactionStarted,
    TransactionUpdated,
)

#: Variables whose NotifyEvent reports a fault (2.0.1 Part 2 Appendices, "Standardized
#: variables"); an ``actualValue`` of "true" (or a vendor value) means the fault is on.
_FAULT_VARIABLES = frozenset({"Problem", "Tripped", "Overload"})
_KEY = re.compile(r"^(?P<component>[^.\[\]]+)(?:\[(?P<evse>\d+)\])?\.(?P<variable>[^.:]+)"
                  r"(?::(?P<instance>.+))?$")
_TRIGGERS = {
    TriggerKind.BOOT_NOTIFICATION: "BootNotification",
    TriggerKind.HEARTBEAT: "Heartbeat",
    TriggerKind.STATUS_NOTIFICATION: "StatusNotification",
    TriggerKind.METER_VALUES: "MeterValues",
    TriggerKind.LOG_STATUS: "LogStatusNotification",
    TriggerKind.FIRMWARE_STATUS: "FirmwareStatusNotification",
}
_ACCEPTED_TOKEN = {"status": "Accepted"}


class Station201(StationConnection, LibraryChargePoint):
    """A connected OCPP 2.0.1 charging station."""

    unreadable_id = "-1"

    # ---- charger to CSMS -------------------------------------------------------------

    @on("BootNotification")
    async def on_boot_notification(
        self, charging_station: dict[str, Any], reason: str, **kwargs: Any
    ) -> call_result.BootNotification:
        """B01: record the station's identity; Accepted (registration happens at connect)."""
        now = utc_now()
        await self.backend.record(
            StationBooted(
                station_id=self.id,
                at=now,
                vendor=charging_station.get("vendor_name", ""),
                model=charging_station.get("model", ""),
                serial_number=charging_station.get("serial_number"),
                firmware_version=charging_station.get("firmware_version"),
                reason=reason,
            )
        )
        return call_result.BootNotification(
            current_time=iso(now), interval=self.heartbeat_interval, status="Accepted"
        )

    @on("Heartbeat")
    async def on_heartbeat(self, **kwargs: Any) -> call_result.Heartbeat:
        """G02: proof of life; answers the CSMS time."""
        now = utc_now()
        await self.backend.record(HeartbeatReceived(station_id=self.id, at=now))
        return call_result.Heartbeat(current_time=iso(now))

    @on("StatusNotification")
    async def on_status_notification(
        self, timestamp: str, connector_status: str, evse_id: int, connector_id: int,
        **kwargs: Any,
    ) -> call_result.StatusNotification:
        """G01: connector status. 2.0.1 reports faults by NotifyEvent, not here."""
        await self.backend.record(
            ConnectorStatusChanged(
                station_id=self.id,
                at=utc_now(),
                connector_id=connector_id,
                evse_id=evse_id,
                status=ConnectorStatus.parse(connector_status),
                raw_status=connector_status,
                station_time=parse_time(timestamp),
            )
        )
        return call_result.StatusNotification()

    @on("MeterValues")
    async def on_meter_values(
        self, evse_id: int, meter_value: list[dict[str, Any]], **kwargs: Any
    ) -> call_result.MeterValues:
        """J01/J02: sampled values outside transactions."""
        now = utc_now()
        await self.backend.record(
            MeterValuesReceived(station_id=self.id, at=now, connector_id=None, evse_id=evse_id,
                                transaction_id=None,
                                samples=tuple(meter_samples(meter_value, now)))
        )
        return call_result.MeterValues()

    @on("TransactionEvent")
    async def on_transaction_event(
        self, event_type: str, timestamp: str, trigger_reason: str, seq_no: int,
        transaction_info: dict[str, Any], **kwargs: Any,
    ) -> call_result.TransactionEvent:
        """E01-E15: one message for start, updates and end; the station owns the id."""
        now = utc_now()
        moment = parse_time(timestamp) or now
        transaction_id = str(transaction_info["transaction_id"])
        evse = kwargs.get("evse") or {}
        evse_id = evse.get("id")
        connector_id = evse.get("connector_id")
        samples = meter_samples(kwargs.get("meter_value") or (), now)
        id_token = (kwargs.get("id_token") or {}).get("id_token")
        events: list[DomainEvent] = []
        if event_type == "Started":
            events.append(
                TransactionStarted(station_id=self.id, at=now, transaction_id=transaction_id,
                                   connector_id=connector_id, evse_id=evse_id,
                                   id_token=id_token, meter_start_wh=energy_wh(samples),
                                   started_at=moment)
            )
        if samples:
            events.append(
                MeterValuesReceived(station_id=self.id, at=now, connector_id=connector_id,
                                    evse_id=evse_id, transaction_id=transaction_id,
                                    samples=tuple(samples))
            )
        if event_type == "Updated" or transaction_info.get("charging_state"):
            events.append(
                TransactionUpdated(station_id=self.id, at=now, transaction_id=transaction_id,
                                   charging_state=transaction_info.get("charging_state"),
                                   trigger_reason=trigger_reason)
            )
        if event_type == "Ended":
            events.append(
                TransactionEnded(station_id=self.id, at=now, transaction_id=transaction_id,
                                 meter_stop_wh=energy_wh(samples), stopped_at=moment,
                                 reason=transaction_info.get("stopped_reason"))
            )
        await self.backend.record(*events)  # one message: stored together or not at all
        if id_token is not None:
            return call_result.TransactionEvent(id_token_info=_ACCEPTED_TOKEN)
        return call_result.TransactionEvent()

    @on("Authorize")
    async def on_authorize(self, id_token: dict[str, Any], **kwargs: Any) -> call_result.Authorize:
        """C01: every token is accepted (authorization lists are out of scope here)."""
        return call_result.Authorize(id_token_info=_ACCEPTED_TOKEN)

    @on("NotifyEvent")
    async def on_notify_event(
        self, generated_at: str, seq_no: int, event_data: list[dict[str, Any]], **kwargs: Any
    ) -> call_result.NotifyEvent:
        """N07: every event is kept; problem variables are also faults (cleared ends them)."""
        now = utc_now()
        events: list[DomainEvent] = []
        for item in event_data:
            component = item.get("component") or {}
            variable = item.get("variable") or {}
            evse = component.get("evse") or {}
            actual = str(item.get("actual_value", ""))
            cleared = bool(item.get("cleared", False))
            event = StationEventNotified(
                station_id=self.id, at=now, event_id=int(item.get("event_id", 0)),
                component=str(component.get("name", "")),
                variable=str(variable.get("name", "")), actual_value=actual,
                trigger=str(item.get("trigger", "")), evse_id=evse.get("id"),
                connector_id=evse.get("connector_id"),
                event_type=item.get("event_notification_type"),
                tech_code=item.get("tech_code"), tech_info=item.get("tech_info"),
                cleared=cleared, station_time=parse_time(item.get("timestamp")),
            )
            events.append(event)
            if event.variable in _FAULT_VARIABLES:
                active = actual.strip().lower() not in {"false", "0", "", "ok", "none"}
                events.append(
                    FaultReported(
                        station_id=self.id, at=now, connector_id=event.connector_id,
                        evse_id=event.evse_id, code=f"{event.component}.{event.variable}",
                        component=event.component, variable=event.variable,
                        vendor_code=event.tech_code, info=event.tech_info,
                        cleared=cleared or not active,
                    )
                )
        await self.backend.record(*events)  # one message: stored together or not at all
        return call_result.NotifyEvent()

    @on("NotifyReport")
    async def on_notify_report(self, **kwargs: Any) -> call_result.NotifyReport:
        """B07/B08: a (partial) device model report, kept as received."""
        await self._report("NotifyReport", kwargs)
        return call_result.NotifyReport()

    @on("NotifyMonitoringReport")
    async def on_notify_monitoring_report(
        self, **kwargs: Any
    ) -> call_result.NotifyMonitoringReport:
        """N02: monitoring report, kept as received."""
        await self._report("NotifyMonitoringReport", kwargs)
        return call_result.NotifyMonitoringReport()

    @on("LogStatusNotification")
    async def on_log_status(
        self, status: str, request_id: int | None = None, **kwargs: Any
    ) -> call_result.LogStatusNotification:
        """N01: log upload progress for a GetLog request."""
        await self.backend.record(
            LogUploadProgress(station_id=self.id, at=utc_now(),
                              status=LogUploadStatus.parse(status), raw_status=status,
                              request_id=request_id)
        )
        return call_result.LogStatusNotification()

    @on("FirmwareStatusNotification")
    async def on_firmware_status(
        self, status: str, request_id: int | None = None, **kwargs: Any
    ) -> call_result.FirmwareStatusNotification:
        """L01: firmware update progress."""
        await self.backend.record(FirmwareProgress(station_id=self.id, at=utc_now(),
                                                   status=status, request_id=request_id))
        return call_result.FirmwareStatusNotification()

    @on("SecurityEventNotification")
    async def on_security_event(
        self, type: str, timestamp: str, **kwargs: Any
    ) -> call_result.SecurityEventNotification:
        """A04: security events are kept for the audit trail."""
        await self.backend.record(
            SecurityEventReceived(station_id=self.id, at=utc_now(), kind=type,
                                  tech_info=kwargs.get("tech_info"),
                                  station_time=parse_time(timestamp))
        )
        return call_result.SecurityEventNotification()

    @on("DataTransfer")
    async def on_data_transfer(self, vendor_id: str, **kwargs: Any) -> call_result.DataTransfer:
        """P01: recorded; no vendor extension is known, so UnknownVendorId."""
        payload = {"vendorId": vendor_id, **{k: v for k, v in kwargs.items() if v is not None}}
        await self.backend.record(
            StationReported(station_id=self.id, at=utc_now(), kind="DataTransfer",
                            payload=payload)
        )
        return call_result.DataTransfer(status="UnknownVendorId")

    async def _report(self, kind: str, payload: dict[str, Any]) -> None:
        await self.backend.record(
            StationReported(station_id=self.id, at=utc_now(), kind=kind,
                            payload={k: v for k, v in payload.items() if v is not None})
        )

    # ---- CSMS to charger -------------------------------------------------------------

    async def execute(self, command: StationCommand) -> CommandOutcome:
        """Send one version-neutral command as its 2.0.1 message; never raises."""
        match command:
            case SoftReset(evse_id=evse_id):
                return await self._send_command(call.Reset(type="OnIdle", evse_id=evse_id))
            case HardReset(evse_id=evse_id):
                return await self._send_command(call.Reset(type="Immediate", evse_id=evse_id))
            case UnlockConnector(connector_id=connector_id, evse_id=evse_id):
                return await self._send_command(
                    call.UnlockConnector(evse_id=evse_id or 1, connector_id=connector_id)
                )
            case ChangeAvailability(operative=operative, evse_id=evse_id,
                                    connector_id=connector_id):
                evse = _evse(evse_id, connector_id)
                return await self._send_command(
                    call.ChangeAvailability(
                        operational_status="Operative" if operative else "Inoperative",
                        evse=evse,
                    )
                )
            case TriggerMessage(kind=kind, evse_id=evse_id, connector_id=connector_id):
                return await self._send_command(
                    call.TriggerMessage(requested_message=_TRIGGERS[kind],
                                        evse=_evse(evse_id, connector_id))
                )
            case GetConfiguration(keys=keys):
                return await self._get_variables(keys)
            case SetConfiguration(key=key, value=value):
                return await self._set_variable(key, value)
            case RequestLog():
                return await self._send_command(
                    call.GetLog(
                        log=dt.LogParametersType(
                            remote_location=command.location,
                            oldest_timestamp=iso(command.since) if command.since else None,
                            latest_timestamp=iso(command.until) if command.until else None,
                        ),
                        log_type=command.kind.value,
                        request_id=command.request_id,
                        retries=command.retries,
                        retry_interval=command.retry_interval,
                    )
                )
            case RemoteStart(id_token=id_token, evse_id=evse_id, remote_start_id=start_id):
                return await self._send_command(
                    call.RequestStartTransaction(
                        id_token=dt.IdTokenType(id_token=id_token, type="Central"),
                        remote_start_id=start_id,
                        evse_id=evse_id,
                    )
                )
            case RemoteStop(transaction_id=transaction_id):
                return await self._send_command(
                    call.RequestStopTransaction(transaction_id=transaction_id)
                )
            case ClearCache():
                return await self._send_command(call.ClearCache())
        raise TypeError(f"unknown command {command!r}")

    async def _get_variables(self, keys: tuple[str, ...]) -> CommandOutcome:
        if not keys:
            return await self._send_command(
                call.GetBaseReport(request_id=_request_id(), report_base="ConfigurationInventory")
            )
        # Playbooks list keys for both versions: 1.6 names (no '.') are not 2.0.1 variables.
        data = []
        for key in keys:
            parsed = _parse_key(key)
            if parsed is not None:
                component, variable = parsed
                data.append(dt.GetVariableDataType(component=component, variable=variable))
        if not data:
            return refused("GetVariables", "no key is Component[evse].Variable: "
                           + ", ".join(keys))
        return await self._send_command(call.GetVariables(get_variable_data=data),
                                        status_key=None)

    async def _set_variable(self, key: str, value: str) -> CommandOutcome:
        parsed = _parse_key(key)
        if parsed is None:
            return refused("SetVariables", f"'{key}' is not Component[evse].Variable")
        component, variable = parsed
        outcome = await self._send_command(
            call.SetVariables(set_variable_data=[
                dt.SetVariableDataType(attribute_value=value, component=component,
                                       variable=variable)
            ]),
            status_key=None,
        )
        results = outcome.data.get("setVariableResult") or []
        if not outcome.ok or not results:
            return outcome
        # The verdict of SetVariables sits in its per-variable result (B05).
        return classify("SetVariables", results[0], "attributeStatus")

    async def _send_command(
        self, payload: Any, status_key: str | None = "status"
    ) -> CommandOutcome:
        return await run_command(type(payload).__name__, lambda: self.request(payload),
                                 status_key)


def _evse(evse_id: int | None, connector_id: int | None) -> dt.EVSEType | None:
    if evse_id is None:
        return None
    return dt.EVSEType(id=evse_id, connector_id=connector_id)


def _parse_key(key: str) -> tuple[dt.ComponentType, dt.VariableType] | None:
    match = _KEY.match(key)
    if match is None:
        return None
    evse = dt.EVSEType(id=int(match["evse"])) if match["evse"] else None
    return (
        dt.ComponentType(name=match["component"], evse=evse),
        dt.VariableType(name=match["variable"], instance=match["instance"]),
    )


#: Report request ids (B07 requestId): unique within a process run, seeded from the clock so
#: that ids from an earlier run are unlikely to be reused.
_report_ids = itertools.count(int(time.time()) % 1_000_000 * 1000)


def _request_id() -> int:
    return next(_report_ids) % 2**31
