"""Simulated OCPP 1.6J charge point (OCPP 1.6 edition 2 + security extension GetLog).

Connector 0 is the charge point itself (1.6 §3.4); connectors ``1..connectors`` are outlets.
"""

from __future__ import annotations

from typing import ClassVar

from ocpp.v16.enums import Action

from simulators.base import JSON, FollowUp, Reply, Session, SessionRejected, StationBase, log
from simulators.behaviour import Mode
from simulators.config import ConfigStore16, utc_now_iso

ENERGY = "Energy.Active.Import.Register"
POWER = "Power.Active.Import"


class Station16(StationBase):
    """OCPP 1.6J charge point simulator; see :class:`~simulators.base.StationBase`."""

    ocpp_version: ClassVar[str] = "1.6"
    default_subprotocol: ClassVar[str] = "ocpp1.6"
    known_actions: ClassVar[frozenset[str]] = frozenset(a.value for a in Action)

    def _setup(self) -> None:
        """Version-specific state, called by ``StationBase.__init__``."""
        self.config = ConfigStore16(self.connectors, self.password, self.security_profile)
        """In-memory configuration keys (GetConfiguration / ChangeConfiguration)."""
        self.firmware_status = "Idle"
        self._handlers.update(
            {
                "Reset": self._on_reset,
                "UnlockConnector": self._on_unlock_connector,
                "ChangeAvailability": self._on_change_availability,
                "TriggerMessage": self._on_trigger_message,
                "ExtendedTriggerMessage": self._on_trigger_message,
                "GetConfiguration": self._on_get_configuration,
                "ChangeConfiguration": self._on_change_configuration,
                "GetDiagnostics": self._on_get_diagnostics,
                "RemoteStartTransaction": self._on_remote_start,
                "RemoteStopTransaction": self._on_remote_stop,
            }
        )
        self._scheduled_availability: dict[int, bool] = {}

    # ------------------------------------------------------------------ version hooks

    def _map_error_code(self, code: str) -> str:
        """OCPP-J 1.6 §4.2.3 spells FormationViolation / OccurenceConstraintViolation."""
        return {
            "FormatViolation": "FormationViolation",
            "OccurrenceConstraintViolation": "OccurenceConstraintViolation",
        }.get(code, code)

    def _boot_payload(self, reason: str) -> JSON:
        """BootNotification.req (1.6 §4.2); 1.6 has no boot reason."""
        return {
            "chargePointVendor": self.vendor,
            "chargePointModel": self.model,
            "chargePointSerialNumber": self.serial,
            "chargeBoxSerialNumber": self.serial,
            "firmwareVersion": self.firmware,
        }

    def _on_heartbeat_interval(self, interval: float) -> None:
        self.config.set_internal("HeartbeatInterval", str(round(interval)))

    def _normal_status(self, connector: int) -> str:
        if connector in self.sessions:
            return "Charging"
        if connector in self.inoperative or (connector != 0 and 0 in self.inoperative):
            return "Unavailable"
        return "Available"

    async def _send_initial_statuses(self) -> None:
        """StatusNotification for connector 0 and every connector (1.6 §4.9), faults from
        ``faults`` re-reported."""
        for connector in range(self.connectors + 1):
            await self._report_current(connector)

    async def _report_current(self, connector: int) -> None:
        if connector in self.faults:
            vendor_code, info = self.fault_details.get(connector, (None, None))
            await self.set_status(connector, self._fault_status(connector),
                                  self.faults[connector], vendor_code, info)
        else:
            await self.set_status(connector, self._normal_status(connector))

    async def _end_sessions_for_reset(self, hard: bool) -> None:
        """1.6 §5.14: stop transactions with reason HardReset / SoftReset before resetting."""
        for connector in list(self.sessions):
            await self.stop_session(connector, reason="HardReset" if hard else "SoftReset")

    # ------------------------------------------------------------------ public message API

    async def set_status(
        self,
        connector: int,
        status: str,
        error_code: str = "NoError",
        vendor_error_code: str | None = None,
        info: str | None = None,
        *,
        validate: bool = True,
    ) -> None:
        """StatusNotification.req (1.6 §4.9); ``validate=False`` allows non-conformant values
        such as ``errorCode: "Error"``."""
        payload: JSON = {
            "connectorId": connector,
            "errorCode": error_code,
            "status": status,
            "timestamp": utc_now_iso(),
        }
        if vendor_error_code is not None:
            payload["vendorErrorCode"] = vendor_error_code
        if info is not None:
            payload["info"] = info
        self.connector_status[connector] = status
        await self.notify("StatusNotification", payload, validate=validate)

    async def authorize(self, id_tag: str) -> str:
        """Authorize.req (1.6 §4.1); return the idTagInfo status."""
        answer = await self.call_action("Authorize", {"idTag": id_tag})
        return str(answer["idTagInfo"]["status"])

    async def start_session(
        self, connector: int, id_tag: str, meter_start_wh: float = 0, *, authorize: bool = True
    ) -> Session:
        """Preparing, Authorize, StartTransaction, Charging (1.6 §4.1, §4.8). Raises
        :class:`SessionRejected` (after going back to Available) if the id tag is refused."""
        self._check_connector(connector)
        if connector in self.sessions:
            raise ValueError(f"connector {connector} already has a session")
        await self.set_status(connector, "Preparing")
        if authorize:
            status = await self.authorize(id_tag)
            if status != "Accepted":
                await self.set_status(connector, self._normal_status(connector))
                raise SessionRejected(status)
        answer = await self.call_action(
            "StartTransaction",
            {
                "connectorId": connector,
                "idTag": id_tag,
                "meterStart": round(meter_start_wh),
                "timestamp": utc_now_iso(),
            },
        )
        session = Session(connector, id_tag, int(answer["transactionId"]), meter_start_wh,
                          meter_start_wh)
        self.sessions[connector] = session
        status = str(answer["idTagInfo"]["status"])
        if status != "Accepted":
            await self.stop_session(connector, reason="DeAuthorized")
            raise SessionRejected(status)
        await self.set_status(connector, "Charging")
        return session

    def _meter_value(
        self, energy_wh: float, power_w: float | None, context: str = "Sample.Periodic"
    ) -> JSON:
        sampled: list[JSON] = [
            {"value": str(round(energy_wh)), "context": context, "measurand": ENERGY,
             "location": "Outlet", "unit": "Wh"}
        ]
        if power_w is not None:
            sampled.append({"value": str(round(power_w)), "context": context,
                            "measurand": POWER, "location": "Outlet", "unit": "W"})
        return {"timestamp": utc_now_iso(), "sampledValue": sampled}

    async def send_meter_values(
        self,
        connector: int,
        energy_wh: float,
        power_w: float | None = None,
        *,
        context: str = "Sample.Periodic",
    ) -> None:
        """MeterValues.req (1.6 §4.7) with transactionId when a session runs."""
        self._check_connector(connector, allow_zero=True)
        payload: JSON = {
            "connectorId": connector,
            "meterValue": [self._meter_value(energy_wh, power_w, context)],
        }
        session = self.sessions.get(connector)
        if session is not None:
            session.energy_wh = energy_wh
            payload["transactionId"] = session.transaction_id
        await self.call_action("MeterValues", payload)

    async def stop_session(
        self, connector: int, meter_stop_wh: float | None = None, reason: str = "Local"
    ) -> None:
        """Finishing, StopTransaction, Available (1.6 §4.10)."""
        session = self.sessions.get(connector)
        if session is None:
            raise ValueError(f"no session on connector {connector}")
        meter = session.energy_wh if meter_stop_wh is None else meter_stop_wh
        session.energy_wh = meter
        await self.set_status(connector, "Finishing")
        payload: JSON = {
            "transactionId": session.transaction_id,
            "meterStop": round(meter),
            "timestamp": utc_now_iso(),
            "reason": reason,
            "idTag": session.id_tag,
        }
        try:
            await self.call_action("StopTransaction", payload)
        finally:
            del self.sessions[connector]
        pending = self._scheduled_availability.pop(connector, None)
        if pending is not None:
            self._apply_availability(connector, pending)
        await self.set_status(connector, self._normal_status(connector))

    # ------------------------------------------------------------------ commands

    def _check_connector(self, connector: int, *, allow_zero: bool = False) -> None:
        low = 0 if allow_zero else 1
        if not low <= connector <= self.connectors:
            raise ValueError(f"connector {connector} out of range")

    async def _on_reset(self, payload: JSON, mode: Mode) -> Reply | None:
        """Reset.conf (1.6 §5.14), then stop transactions, drop the connection, reboot."""
        status = self._status_or_none(mode)
        if status is None:
            return None
        if status != "Accepted":
            return Reply({"status": status})
        hard = payload["type"] == "Hard"

        async def reset() -> None:
            await self._perform_reset(hard=hard, boot_reason="RemoteReset")

        return Reply({"status": "Accepted"}, rest=reset)

    async def _on_unlock_connector(self, payload: JSON, mode: Mode) -> Reply | None:
        """UnlockConnector.conf (1.6 §5.18): a running transaction is stopped first
        (reason UnlockCommand)."""
        status = self._status_or_none(
            mode, accepted="Unlocked", rejected="UnlockFailed", not_supported="NotSupported"
        )
        if status is None:
            return None
        connector = int(payload["connectorId"])
        if not 1 <= connector <= self.connectors:
            return Reply({"status": "UnlockFailed"})
        if status == "Unlocked" and connector in self.sessions:
            await self.stop_session(connector, reason="UnlockCommand")
        return Reply({"status": status})

    def _apply_availability(self, connector: int, operative: bool) -> None:
        if operative:
            self.inoperative.discard(connector)
        else:
            self.inoperative.add(connector)

    async def _on_change_availability(self, payload: JSON, mode: Mode) -> Reply | None:
        """ChangeAvailability.conf (1.6 §5.2): connector 0 = all; Scheduled while a transaction
        runs; then StatusNotification Unavailable/Available for the affected connectors."""
        status = self._status_or_none(mode)
        if status is None:
            return None
        connector = int(payload["connectorId"])
        if status != "Accepted" or not 0 <= connector <= self.connectors:
            return Reply({"status": "Rejected"})
        operative = payload["type"] == "Operative"
        affected = list(range(self.connectors + 1)) if connector == 0 else [connector]
        busy = [c for c in affected if c in self.sessions]
        for c in affected:
            if c in busy:
                self._scheduled_availability[c] = operative
            else:
                self._apply_availability(c, operative)
        targets = [c for c in affected if c not in busy and c not in self.faults]
        return self._status_reply("Scheduled" if busy else "Accepted", targets)

    async def _on_trigger_message(self, payload: JSON, mode: Mode) -> Reply | None:
        """TriggerMessage.conf (1.6 §5.17) and ExtendedTriggerMessage (security extension):
        Accepted, then the requested message."""
        status = self._status_or_none(mode, not_supported="NotImplemented")
        if status is None:
            return None
        if status != "Accepted":
            return Reply({"status": status})
        requested = str(payload["requestedMessage"])
        connector = payload.get("connectorId")
        if connector is not None and not 0 <= int(connector) <= self.connectors:
            return Reply({"status": "Rejected"})
        follow_up = self._triggered(requested, None if connector is None else int(connector))
        if follow_up is None:
            return Reply({"status": "NotImplemented"})
        return Reply({"status": "Accepted"}, follow_up)

    def _triggered(self, requested: str, connector: int | None) -> FollowUp | None:
        """Coroutine function sending the triggered message, or None if unsupported."""

        async def boot() -> None:
            await self.send_boot()

        async def heartbeat() -> None:
            await self.heartbeat()

        async def status() -> None:
            targets = range(self.connectors + 1) if connector is None else [connector]
            for c in targets:
                await self._report_current(c)

        async def meter_values() -> None:
            targets = range(1, self.connectors + 1) if connector is None else [connector]
            for c in targets:
                session = self.sessions.get(c)
                energy = session.energy_wh if session is not None else 0.0
                await self.send_meter_values(c, energy, context="Trigger")

        async def diagnostics() -> None:
            await self.notify("DiagnosticsStatusNotification", {"status": self.diagnostics_status})

        async def firmware() -> None:
            await self.notify("FirmwareStatusNotification", {"status": self.firmware_status})

        async def log_status() -> None:
            state, request_id = self.log_status
            payload: JSON = {"status": state}
            if request_id is not None:
                payload["requestId"] = request_id
            await self.notify("LogStatusNotification", payload)

        table: dict[str, FollowUp] = {
            "BootNotification": boot,
            "Heartbeat": heartbeat,
            "StatusNotification": status,
            "MeterValues": meter_values,
            "DiagnosticsStatusNotification": diagnostics,
            "FirmwareStatusNotification": firmware,
            "LogStatusNotification": log_status,
        }
        return table.get(requested)

    async def _on_get_configuration(self, payload: JSON, mode: Mode) -> Reply | None:
        """GetConfiguration.conf (1.6 §5.8); reject mode reports every key as unknown."""
        if mode is Mode.NOT_SUPPORTED:
            return None
        keys = [str(k) for k in payload.get("key", [])]
        if mode is Mode.REJECT:
            return Reply({"unknownKey": keys} if keys else {})
        return Reply(self.config.get_configuration(keys or None))

    async def _on_change_configuration(self, payload: JSON, mode: Mode) -> Reply | None:
        """ChangeConfiguration.conf (1.6 §5.3); HeartbeatInterval and AuthorizationKey take
        effect (the key is the Basic auth password of the next connection)."""
        status = self._status_or_none(mode, not_supported="NotSupported")
        if status is None:
            return None
        if status != "Accepted":
            return Reply({"status": status})
        key, value = str(payload["key"]), str(payload["value"])
        result = self.config.change(key, value)
        if result == "Accepted":
            if key == "HeartbeatInterval":
                self.set_heartbeat_interval(float(value))
            elif key == "AuthorizationKey":
                self.password = value
        return Reply({"status": result})

    async def _report_diagnostics(self, status: str) -> None:
        """DiagnosticsStatusNotification.req (1.6 §4.4)."""
        self.diagnostics_status = "Uploading" if status == "Uploading" else "Idle"
        await self.notify("DiagnosticsStatusNotification", {"status": status})

    async def _on_get_diagnostics(self, payload: JSON, mode: Mode) -> Reply | None:
        """GetDiagnostics.conf (1.6 §5.9) with fileName, then DiagnosticsStatusNotification
        Uploading and Uploaded/UploadFailed. Reject mode: no file available (empty answer)."""
        if mode is Mode.NOT_SUPPORTED:
            return None
        if mode is Mode.REJECT:
            return Reply({})
        filename = self._log_filename("diagnostics")
        return self._upload_reply(
            {"fileName": filename},
            location=str(payload["location"]),
            filename=filename,
            retries=int(payload.get("retries", 0)),
            retry_interval=float(payload.get("retryInterval", 0)),
            report=self._report_diagnostics,
            uploading="Uploading",
            uploaded="Uploaded",
            failed="UploadFailed",
        )

    async def _on_remote_start(self, payload: JSON, mode: Mode) -> Reply | None:
        """RemoteStartTransaction.conf (1.6 §5.11): Accepted if the connector is free, then
        the session (Authorize only if AuthorizeRemoteTxRequests is true)."""
        status = self._status_or_none(mode)
        if status is None:
            return None
        requested = payload.get("connectorId")
        free = [
            c for c in range(1, self.connectors + 1)
            if c not in self.sessions and c not in self.faults
            and self._normal_status(c) == "Available"
        ]
        connector = free[0] if requested is None and free else requested
        if status != "Accepted" or connector is None or connector not in free:
            return Reply({"status": "Rejected"})
        id_tag = str(payload["idTag"])
        authorize = self.config.get("AuthorizeRemoteTxRequests") == "true"

        async def start() -> None:
            try:
                await self.start_session(int(connector), id_tag, authorize=authorize)
            except SessionRejected as exc:
                log.warning("%s: remote start refused: %s", self.station_id, exc)

        return Reply({"status": "Accepted"}, rest=start)

    async def _on_remote_stop(self, payload: JSON, mode: Mode) -> Reply | None:
        """RemoteStopTransaction.conf (1.6 §5.12): Accepted for a running transaction, then
        StopTransaction reason Remote."""
        status = self._status_or_none(mode)
        if status is None:
            return None
        tx = payload["transactionId"]
        connector = next((c for c, s in self.sessions.items() if s.transaction_id == tx), None)
        if status != "Accepted" or connector is None:
            return Reply({"status": "Rejected"})

        async def stop() -> None:
            if connector in self.sessions:
                await self.stop_session(connector, reason="Remote")

        return Reply({"status": "Accepted"}, rest=stop)
