"""OCPP 1.6J adapter (with the 1.6 security extension): frames to events, commands to frames.

Each handler records the version-neutral event before it answers, so an answered message is
a stored one. Section numbers refer to the OCPP 1.6 specification (edition 2) and the
"Improved security for OCPP 1.6-J" whitepaper.
"""

from __future__ import annotations

from typing import Any

from ocpp.routing import on
from ocpp.v16 import ChargePoint as LibraryChargePoint
from ocpp.v16 import call, call_result

from csms.protocol.common import (
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
    LogKind,
    OutcomeStatus,
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
    StationReported,
    TransactionEnded,
)

_TRIGGERS = {
    TriggerKind.BOOT_NOTIFICATION: "BootNotification",
    TriggerKind.HEARTBEAT: "Heartbeat",
    TriggerKind.STATUS_NOTIFICATION: "StatusNotification",
    TriggerKind.METER_VALUES: "MeterValues",
    TriggerKind.LOG_STATUS: "DiagnosticsStatusNotification",
    TriggerKind.FIRMWARE_STATUS: "FirmwareStatusNotification",
}
_ACCEPTED_ID_TAG = {"status": "Accepted"}


class Station16(StationConnection, LibraryChargePoint):
    """A connected OCPP 1.6J charge point."""

    #: Use the security extension's GetLog for diagnostics logs instead of GetDiagnostics.
    #: Set once the station shows it speaks the extension (it sent one of its messages).
    prefer_get_log = False

    # ---- charger to CSMS -------------------------------------------------------------

    @on("BootNotification")
    async def on_boot_notification(
        self, charge_point_vendor: str, charge_point_model: str, **kwargs: Any
    ) -> call_result.BootNotification:
        """§4.2: record the station's identity; always Accepted (registration is at connect)."""
        now = utc_now()
        await self.backend.record(
            StationBooted(
                station_id=self.id,
                at=now,
                vendor=charge_point_vendor,
                model=charge_point_model,
                serial_number=kwargs.get("charge_point_serial_number")
                or kwargs.get("charge_box_serial_number"),
                firmware_version=kwargs.get("firmware_version"),
            )
        )
        return call_result.BootNotification(
            current_time=iso(now), interval=self.heartbeat_interval, status="Accepted"
        )

    @on("Heartbeat")
    async def on_heartbeat(self, **kwargs: Any) -> call_result.Heartbeat:
        """§4.6: proof of life; answers the CSMS time."""
        now = utc_now()
        await self.backend.record(HeartbeatReceived(station_id=self.id, at=now))
        return call_result.Heartbeat(current_time=iso(now))

    @on("StatusNotification")
    async def on_status_notification(
        self, connector_id: int, error_code: str, status: str, **kwargs: Any
    ) -> call_result.StatusNotification:
        """§4.9: connector status; an errorCode other than NoError is also a fault."""
        now = utc_now()
        vendor_id = kwargs.get("vendor_id")
        vendor_error_code = kwargs.get("vendor_error_code")
        info = kwargs.get("info")
        events: list[DomainEvent] = [
            ConnectorStatusChanged(
                station_id=self.id,
                at=now,
                connector_id=connector_id,
                evse_id=None,
                status=ConnectorStatus.parse(status),
                raw_status=status,
                error_code=error_code,
                vendor_id=vendor_id,
                vendor_error_code=vendor_error_code,
                info=info,
                station_time=parse_time(kwargs.get("timestamp")),
            )
        ]
        if error_code != "NoError":
            events.append(
                FaultReported(
                    station_id=self.id,
                    at=now,
                    connector_id=connector_id,
                    evse_id=None,
                    code=error_code,
                    vendor_id=vendor_id,
                    vendor_code=vendor_error_code,
                    info=info,
                )
            )
        await self.backend.record(*events)  # one message: stored together or not at all
        return call_result.StatusNotification()

    @on("MeterValues")
    async def on_meter_values(
        self, connector_id: int, meter_value: list[dict[str, Any]], **kwargs: Any
    ) -> call_result.MeterValues:
        """§4.7: sampled values, with or without a transaction."""
        now = utc_now()
        transaction_id = kwargs.get("transaction_id")
        await self.backend.record(
            MeterValuesReceived(
                station_id=self.id,
                at=now,
                connector_id=connector_id,
                evse_id=None,
                transaction_id=str(transaction_id) if transaction_id is not None else None,
                samples=tuple(meter_samples(meter_value, now)),
            )
        )
        return call_result.MeterValues()

    @on("Authorize")
    async def on_authorize(self, id_tag: str, **kwargs: Any) -> call_result.Authorize:
        """§4.1: every id tag is accepted (authorization lists are out of scope here)."""
        return call_result.Authorize(id_tag_info=_ACCEPTED_ID_TAG)

    @on("StartTransaction")
    async def on_start_transaction(
        self, connector_id: int, id_tag: str, meter_start: int, timestamp: str, **kwargs: Any
    ) -> call_result.StartTransaction:
        """§4.8: the CSMS assigns the transactionId."""
        now = utc_now()
        transaction_id = await self.backend.begin_local_transaction(
            station_id=self.id,
            at=now,
            connector_id=connector_id,
            evse_id=None,
            id_token=id_tag,
            meter_start_wh=float(meter_start),
            started_at=parse_time(timestamp) or now,
        )
        return call_result.StartTransaction(
            transaction_id=transaction_id, id_tag_info=_ACCEPTED_ID_TAG
        )

    @on("StopTransaction")
    async def on_stop_transaction(
        self, meter_stop: int, timestamp: str, transaction_id: int, **kwargs: Any
    ) -> call_result.StopTransaction:
        """§4.10: closes the transaction; transactionData meter values are kept too."""
        now = utc_now()
        samples = meter_samples(kwargs.get("transaction_data") or (), now)
        events: list[DomainEvent] = []
        if samples:
            events.append(
                MeterValuesReceived(
                    station_id=self.id,
                    at=now,
                    connector_id=None,
                    evse_id=None,
                    transaction_id=str(transaction_id),
                    samples=tuple(samples),
                )
            )
        events.append(
            TransactionEnded(
                station_id=self.id,
                at=now,
                transaction_id=str(transaction_id),
                meter_stop_wh=float(meter_stop),
                stopped_at=parse_time(timestamp) or now,
                reason=kwargs.get("reason"),
            )
        )
        await self.backend.record(*events)  # one message: stored together or not at all
        if kwargs.get("id_tag") is not None:
            return call_result.StopTransaction(id_tag_info=_ACCEPTED_ID_TAG)
        return call_result.StopTransaction()

    @on("DataTransfer")
    async def on_data_transfer(self, vendor_id: str, **kwargs: Any) -> call_result.DataTransfer:
        """§4.3: recorded; no vendor extension is known, so UnknownVendorId."""
        payload = {"vendorId": vendor_id, **{k: v for k, v in kwargs.items() if v is not None}}
        await self.backend.record(
            StationReported(station_id=self.id, at=utc_now(), kind="DataTransfer",
                            payload=payload)
        )
        return call_result.DataTransfer(status="UnknownVendorId")

    @on("DiagnosticsStatusNotification")
    async def on_diagnostics_status(
        self, status: str, **kwargs: Any
    ) -> call_result.DiagnosticsStatusNotification:
        """§4.4: GetDiagnostics upload progress (carries no request id)."""
        await self.backend.record(
            LogUploadProgress(station_id=self.id, at=utc_now(),
                              status=LogUploadStatus.parse(status), raw_status=status)
        )
        return call_result.DiagnosticsStatusNotification()

    @on("LogStatusNotification")
    async def on_log_status(
        self, status: str, request_id: int | None = None, **kwargs: Any
    ) -> call_result.LogStatusNotification:
        """Security extension §4.6: GetLog upload progress."""
        self.prefer_get_log = True
        await self.backend.record(
            LogUploadProgress(station_id=self.id, at=utc_now(),
                              status=LogUploadStatus.parse(status), raw_status=status,
                              request_id=request_id)
        )
        return call_result.LogStatusNotification()

    @on("FirmwareStatusNotification")
    async def on_firmware_status(
        self, status: str, **kwargs: Any
    ) -> call_result.FirmwareStatusNotification:
        """§4.5: firmware update progress."""
        await self.backend.record(FirmwareProgress(station_id=self.id, at=utc_now(),
                                                   status=status))
        return call_result.FirmwareStatusNotification()

    @on("SignedFirmwareStatusNotification")
    async def on_signed_firmware_status(
        self, status: str, request_id: int | None = None, **kwargs: Any
    ) -> call_result.SignedFirmwareStatusNotification:
        """Security extension §4.8: signed firmware update progress."""
        self.prefer_get_log = True
        await self.backend.record(FirmwareProgress(station_id=self.id, at=utc_now(),
                                                   status=status, request_id=request_id))
        return call_result.SignedFirmwareStatusNotification()

    @on("SecurityEventNotification")
    async def on_security_event(
        self, type: str, timestamp: str, **kwargs: Any
    ) -> call_result.SecurityEventNotification:
        """Security extension §4.5: security events are kept for the audit trail."""
        self.prefer_get_log = True
        await self.backend.record(
            SecurityEventReceived(station_id=self.id, at=utc_now(), kind=type,
                                  tech_info=kwargs.get("tech_info"),
                                  station_time=parse_time(timestamp))
        )
        return call_result.SecurityEventNotification()

    # ---- CSMS to charger -------------------------------------------------------------

    async def execute(self, command: StationCommand) -> CommandOutcome:
        """Send one version-neutral command as its 1.6 message; never raises."""
        match command:
            case SoftReset():
                return await self._send_command(call.Reset(type="Soft"))
            case HardReset():
                return await self._send_command(call.Reset(type="Hard"))
            case UnlockConnector(connector_id=connector_id):
                return await self._send_command(call.UnlockConnector(connector_id=connector_id))
            case ChangeAvailability(operative=operative, connector_id=connector_id):
                return await self._send_command(
                    call.ChangeAvailability(
                        connector_id=connector_id or 0,
                        type="Operative" if operative else "Inoperative",
                    )
                )
            case TriggerMessage(kind=kind, connector_id=connector_id):
                return await self._send_command(
                    call.TriggerMessage(requested_message=_TRIGGERS[kind],
                                        connector_id=connector_id)
                )
            case GetConfiguration(keys=keys):
                return await self._send_command(
                    call.GetConfiguration(key=list(keys) or None), status_key=None
                )
            case SetConfiguration(key=key, value=value):
                return await self._send_command(call.ChangeConfiguration(key=key, value=value))
            case RequestLog():
                return await self._request_log(command)
            case RemoteStart(id_token=id_token, connector_id=connector_id):
                return await self._send_command(
                    call.RemoteStartTransaction(id_tag=id_token, connector_id=connector_id)
                )
            case RemoteStop(transaction_id=transaction_id):
                if not transaction_id.isdigit():
                    return refused("RemoteStopTransaction",
                                   "OCPP 1.6 transaction ids are integers")
                return await self._send_command(
                    call.RemoteStopTransaction(transaction_id=int(transaction_id))
                )
            case ClearCache():
                return await self._send_command(call.ClearCache())
        raise TypeError(f"unknown command {command!r}")

    async def _request_log(self, command: RequestLog) -> CommandOutcome:
        since = iso(command.since) if command.since else None
        until = iso(command.until) if command.until else None
        if command.kind is LogKind.SECURITY or self.prefer_get_log:
            outcome = await self._send_command(
                call.GetLog(
                    log={"remote_location": command.location, "oldest_timestamp": since,
                         "latest_timestamp": until},
                    log_type=command.kind.value,
                    request_id=command.request_id,
                    retries=command.retries,
                    retry_interval=command.retry_interval,
                )
            )
            if command.kind is LogKind.SECURITY or outcome.status is not (
                OutcomeStatus.NOT_SUPPORTED
            ):
                return outcome
            self.prefer_get_log = False  # the extension is not there after all
        outcome = await self._send_command(
            call.GetDiagnostics(
                location=command.location,
                retries=command.retries,
                retry_interval=command.retry_interval,
                start_time=since,
                stop_time=until,
            ),
            status_key=None,
        )
        if outcome.ok and not outcome.data.get("fileName"):
            # §6.22: no fileName means the station has no diagnostics to upload.
            return refused("GetDiagnostics", "the station has no diagnostics information")
        return outcome

    async def _send_command(
        self, payload: Any, status_key: str | None = "status"
    ) -> CommandOutcome:
        return await run_command(type(payload).__name__, lambda: self.request(payload),
                                 status_key)
