"""Simulated OCPP 2.0.1 charging station: EVSEs ``1..connectors``, one connector (id 1) each.

Faults are reported as 2.0.1 does (N07): StatusNotification ``Faulted`` plus a NotifyEvent on the
component/variable of the problem (``RCD.Tripped``, ``ConnectorPlugRetentionLock.Problem`` ...)
with ``techCode`` = the vendor code and ``cleared`` when the problem goes away.
"""

from __future__ import annotations

import functools
import uuid
from typing import ClassVar

from ocpp.v201.enums import Action

from simulators.base import JSON, FollowUp, Reply, Session, SessionRejected, StationBase, log
from simulators.behaviour import Mode
from simulators.config import Variable, VariableStore201, VarKey, utc_now_iso

ENERGY = "Energy.Active.Import.Register"
POWER = "Power.Active.Import"

ERROR_COMPONENTS: dict[str, tuple[str, str, str]] = {
    # 1.6 errorCode -> (component, variable, actualValue) (ocpp-notes fault table).
    "ConnectorLockFailure": ("ConnectorPlugRetentionLock", "Problem", "true"),
    "EVCommunicationError": ("CPPWMController", "Problem", "true"),
    "GroundFailure": ("RCD", "Tripped", "true"),
    "OverCurrentFailure": ("OverCurrentProtection", "Tripped", "true"),
    "PowerSwitchFailure": ("PowerContactor", "Problem", "true"),
    "HighTemperature": ("TemperatureSensor", "Problem", "true"),
    "OverVoltage": ("ElectricalFeed", "Problem", "true"),
    "UnderVoltage": ("ElectricalFeed", "Problem", "true"),
    "InternalError": ("ChargingStation", "Problem", "true"),
    "ResetFailure": ("ChargingStation", "Problem", "true"),
    "ReaderFailure": ("TokenReader", "Problem", "true"),
    "PowerMeterFailure": ("FiscalMetering", "Problem", "true"),
    "WeakSignal": ("DataLink", "SignalStrength", "-110"),
    "OtherError": ("ChargingStation", "Problem", "true"),
    "LocalListConflict": ("LocalAuthListCtrlr", "Problem", "true"),
}
"""How a 1.6-style error code passed to ``set_status`` is reported as a 2.0.1 event."""

STATUS_16_TO_201 = {
    "Preparing": "Occupied",
    "Charging": "Occupied",
    "SuspendedEV": "Occupied",
    "SuspendedEVSE": "Occupied",
    "Finishing": "Occupied",
}

STOP_TRIGGER = {
    "Local": "StopAuthorized",
    "Remote": "RemoteStop",
    "DeAuthorized": "Deauthorized",
    "EVDisconnected": "EVCommunicationLost",
    "ImmediateReset": "ResetCommand",
    "EnergyLimitReached": "EnergyLimitReached",
    "TimeLimitReached": "TimeLimitReached",
}


class Station201(StationBase):
    """OCPP 2.0.1 charging station simulator; see :class:`~simulators.base.StationBase`."""

    ocpp_version: ClassVar[str] = "2.0.1"
    default_subprotocol: ClassVar[str] = "ocpp2.0.1"
    known_actions: ClassVar[frozenset[str]] = frozenset(a.value for a in Action)

    def _setup(self) -> None:
        """Version-specific state, called by ``StationBase.__init__``."""
        self.variables = VariableStore201(
            station_id=self.station_id,
            evses=self.connectors,
            vendor=self.vendor,
            model=self.model,
            serial=self.serial,
            firmware=self.firmware,
            password=self.password,
            security_profile=max(1, self.security_profile),
        )
        """In-memory device model (GetVariables / SetVariables / GetBaseReport)."""
        self.variables.add(
            VarKey("ChargingStation", None, "AvailabilityState"),
            Variable("", mutability="ReadOnly", getter=self._station_availability),
        )
        for evse in range(1, self.connectors + 1):
            self.variables.add(
                VarKey("EVSE", evse, "AvailabilityState"),
                Variable("", mutability="ReadOnly", getter=functools.partial(self._status, evse)),
            )
        self.firmware_status = "Idle"
        self.event_seq = 0
        self._event_id = 0
        self._problems: dict[int, tuple[str, str]] = {}
        self._scheduled_availability: dict[int, bool] = {}
        self._scheduled_reset = False
        self._handlers.update(
            {
                "Reset": self._on_reset,
                "UnlockConnector": self._on_unlock_connector,
                "ChangeAvailability": self._on_change_availability,
                "TriggerMessage": self._on_trigger_message,
                "GetVariables": self._on_get_variables,
                "SetVariables": self._on_set_variables,
                "GetBaseReport": self._on_get_base_report,
                "RequestStartTransaction": self._on_request_start,
                "RequestStopTransaction": self._on_request_stop,
            }
        )

    # ------------------------------------------------------------------ version hooks

    def _boot_payload(self, reason: str) -> JSON:
        """BootNotificationRequest (2.0.1 B01) with the boot reason."""
        return {
            "reason": reason,
            "chargingStation": {
                "model": self.model,
                "vendorName": self.vendor,
                "serialNumber": self.serial,
                "firmwareVersion": self.firmware,
            },
        }

    def _on_heartbeat_interval(self, interval: float) -> None:
        self.variables.set_internal("OCPPCommCtrlr", "HeartbeatInterval", str(round(interval)))

    def _station_availability(self) -> str:
        return "Unavailable" if 0 in self.inoperative else "Available"

    def _status(self, evse: int) -> str:
        if evse in self.faults:
            return self._fault_status(evse)
        return self._normal_status(evse)

    def _normal_status(self, connector: int) -> str:
        if connector in self.sessions:
            return "Occupied"
        if connector in self.inoperative or 0 in self.inoperative:
            return "Unavailable"
        return "Available"

    async def _send_initial_statuses(self) -> None:
        """StatusNotification per EVSE (connector 1) after boot (2.0.1 B01.FR.05), faults
        re-reported with their NotifyEvent."""
        for evse in range(1, self.connectors + 1):
            await self._report_current(evse)

    async def _report_current(self, evse: int) -> None:
        if evse in self.faults:
            self._problems.pop(evse, None)  # re-raise the event after boot
            vendor_code, info = self.fault_details.get(evse, (None, None))
            await self.set_status(evse, self._fault_status(evse), self.faults[evse],
                                  vendor_code, info)
        else:
            await self.set_status(evse, self._normal_status(evse))

    async def _end_sessions_for_reset(self, hard: bool) -> None:
        """B12: transactions end with stoppedReason ImmediateReset before the reset."""
        for evse in list(self.sessions):
            await self.stop_session(evse, reason="ImmediateReset")

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
        """StatusNotification (2.0.1 G01) for EVSE ``connector`` / connector 1; 1.6-style
        statuses are mapped (Charging -> Occupied). A non-NoError ``error_code`` also sends a
        NotifyEvent (N07) for the matching component/variable (``ERROR_COMPONENTS``) with
        ``techCode`` = ``vendor_error_code``; NoError after a problem sends it ``cleared``.
        EVSE 0 = the station: only the NotifyEvent."""
        connector_status = STATUS_16_TO_201.get(status, status)
        if connector > 0:
            self.connector_status[connector] = connector_status
            await self.notify(
                "StatusNotification",
                {
                    "timestamp": utc_now_iso(),
                    "connectorStatus": connector_status,
                    "evseId": connector,
                    "connectorId": 1,
                },
                validate=validate,
            )
        if error_code != "NoError":
            component, variable, value = ERROR_COMPONENTS.get(
                error_code, ("ChargingStation", "Problem", "true")
            )
            override = self.fault_components.get(connector)
            if override is not None and self.faults.get(connector) == error_code:
                component, variable = override
                value = "-110" if variable == "SignalStrength" else "true"
            self._problems[connector] = (component, variable)
            await self.notify_event(
                component,
                variable,
                value,
                evse=connector or None,
                tech_code=vendor_error_code,
                tech_info=info or error_code,
                cleared=False,
            )
        elif connector in self._problems:
            component, variable = self._problems.pop(connector)
            cleared_value = "-70" if variable == "SignalStrength" else "false"
            await self.notify_event(
                component, variable, cleared_value, evse=connector or None, cleared=True
            )

    async def notify_event(
        self,
        component: str,
        variable: str,
        actual_value: str,
        *,
        evse: int | None = None,
        connector: int | None = 1,
        trigger: str = "Delta",
        tech_code: str | None = None,
        tech_info: str | None = None,
        cleared: bool | None = None,
        event_id: int | None = None,
        cause: int | None = None,
        transaction_id: str | None = None,
        event_notification_type: str = "HardWiredNotification",
        validate: bool = True,
    ) -> None:
        """NotifyEvent (2.0.1 N07) with one EventData; ``seqNo`` per message, ``eventId``
        incrementing unless given."""
        if event_id is None:
            self._event_id += 1
            event_id = self._event_id
        comp: JSON = {"name": component}
        if evse is not None:
            comp["evse"] = {"id": evse} if connector is None else {"id": evse,
                                                                    "connectorId": connector}
        now = utc_now_iso()
        data: JSON = {
            "eventId": event_id,
            "timestamp": now,
            "trigger": trigger,
            "actualValue": actual_value,
            "component": comp,
            "variable": {"name": variable},
            "eventNotificationType": event_notification_type,
        }
        optional = {"techCode": tech_code, "techInfo": tech_info, "cleared": cleared,
                    "cause": cause, "transactionId": transaction_id}
        data.update({k: v for k, v in optional.items() if v is not None})
        payload: JSON = {"generatedAt": now, "seqNo": 0, "tbc": False, "eventData": [data]}
        await self.notify("NotifyEvent", payload, validate=validate)

    async def authorize(self, id_tag: str, token_type: str = "ISO14443") -> str:
        """AuthorizeRequest (2.0.1 C01); return idTokenInfo.status."""
        answer = await self.call_action(
            "Authorize", {"idToken": {"idToken": id_tag, "type": token_type}}
        )
        return str(answer["idTokenInfo"]["status"])

    def _meter_value(
        self, energy_wh: float, power_w: float | None, context: str = "Sample.Periodic"
    ) -> JSON:
        sampled: list[JSON] = [
            {"value": round(energy_wh, 3), "context": context, "measurand": ENERGY,
             "location": "Outlet", "unitOfMeasure": {"unit": "Wh"}}
        ]
        if power_w is not None:
            sampled.append({"value": round(power_w, 3), "context": context, "measurand": POWER,
                            "location": "Outlet", "unitOfMeasure": {"unit": "W"}})
        return {"timestamp": utc_now_iso(), "sampledValue": sampled}

    async def _transaction_event(
        self,
        session: Session,
        event_type: str,
        trigger_reason: str,
        *,
        charging_state: str | None = None,
        stopped_reason: str | None = None,
        meter: JSON | None = None,
        with_token: bool = False,
    ) -> JSON:
        """TransactionEventRequest (2.0.1 E01-E07) with the session's next seqNo."""
        info: JSON = {"transactionId": str(session.transaction_id)}
        if charging_state is not None:
            info["chargingState"] = charging_state
        if stopped_reason is not None:
            info["stoppedReason"] = stopped_reason
        if session.remote_start_id is not None and event_type == "Started":
            info["remoteStartId"] = session.remote_start_id
        payload: JSON = {
            "eventType": event_type,
            "timestamp": utc_now_iso(),
            "triggerReason": trigger_reason,
            "seqNo": session.seq_no,
            "transactionInfo": info,
        }
        if event_type == "Started":
            payload["evse"] = {"id": session.connector, "connectorId": 1}
        if with_token:
            token_type = "Central" if session.remote_start_id is not None else "ISO14443"
            payload["idToken"] = {"idToken": session.id_tag, "type": token_type}
        if meter is not None:
            payload["meterValue"] = [meter]
        session.seq_no += 1
        return await self.call_action("TransactionEvent", payload)

    async def start_session(
        self,
        connector: int,
        id_tag: str,
        meter_start_wh: float = 0,
        *,
        authorize: bool = True,
        remote_start_id: int | None = None,
        transaction_id: str | None = None,
    ) -> Session:
        """Occupied, Authorize, TransactionEvent Started (transactionId generated here, meter
        value Transaction.Begin) (2.0.1 E01/E03/F01). Raises :class:`SessionRejected` if the id
        token is refused (the transaction is then ended with stoppedReason DeAuthorized)."""
        self._check_evse(connector)
        if connector in self.sessions:
            raise ValueError(f"EVSE {connector} already has a session")
        await self.set_status(connector, "Occupied")
        if authorize:
            status = await self.authorize(id_tag)
            if status != "Accepted":
                await self.set_status(connector, self._normal_status(connector))
                raise SessionRejected(status)
        session = Session(
            connector,
            id_tag,
            transaction_id or str(uuid.uuid4()),
            meter_start_wh,
            meter_start_wh,
            remote_start_id=remote_start_id,
        )
        self.sessions[connector] = session
        answer = await self._transaction_event(
            session,
            "Started",
            "RemoteStart" if remote_start_id is not None else "Authorized",
            charging_state="Charging",
            meter=self._meter_value(meter_start_wh, None, "Transaction.Begin"),
            with_token=True,
        )
        status = str(answer.get("idTokenInfo", {}).get("status", "Accepted"))
        if status != "Accepted":
            await self.stop_session(connector, reason="DeAuthorized")
            raise SessionRejected(status)
        return session

    async def send_meter_values(
        self,
        connector: int,
        energy_wh: float,
        power_w: float | None = None,
        *,
        context: str = "Sample.Periodic",
    ) -> None:
        """TransactionEvent Updated MeterValuePeriodic during a session (E02), MeterValues
        (J01) otherwise."""
        session = self.sessions.get(connector)
        meter = self._meter_value(energy_wh, power_w, context)
        if session is not None:
            session.energy_wh = energy_wh
            trigger = "Trigger" if context == "Trigger" else "MeterValuePeriodic"
            await self._transaction_event(session, "Updated", trigger,
                                          charging_state="Charging", meter=meter)
        else:
            if not 0 <= connector <= self.connectors:
                raise ValueError(f"EVSE {connector} out of range")
            await self.call_action("MeterValues", {"evseId": connector, "meterValue": [meter]})

    async def stop_session(
        self, connector: int, meter_stop_wh: float | None = None, reason: str = "Local"
    ) -> None:
        """TransactionEvent Ended with stoppedReason and Transaction.End meter value (E06),
        then StatusNotification Available (or Unavailable)."""
        session = self.sessions.get(connector)
        if session is None:
            raise ValueError(f"no session on EVSE {connector}")
        meter = session.energy_wh if meter_stop_wh is None else meter_stop_wh
        session.energy_wh = meter
        try:
            await self._transaction_event(
                session,
                "Ended",
                STOP_TRIGGER.get(reason, "StopAuthorized"),
                charging_state="Idle",
                stopped_reason=reason,
                meter=self._meter_value(meter, None, "Transaction.End"),
            )
        finally:
            del self.sessions[connector]
        pending = self._scheduled_availability.pop(connector, None)
        if pending is not None:
            self._apply_availability(connector, pending)
        await self._report_current(connector)
        if self._scheduled_reset and not self.sessions:
            self._scheduled_reset = False
            self._spawn(self._perform_reset(hard=False, boot_reason="ScheduledReset"))

    # ------------------------------------------------------------------ commands

    def _check_evse(self, evse: int) -> None:
        if not 1 <= evse <= self.connectors:
            raise ValueError(f"EVSE {evse} out of range")

    async def _on_reset(self, payload: JSON, mode: Mode) -> Reply | None:
        """Reset (2.0.1 B11/B12): Immediate ends transactions and reboots; OnIdle reboots now
        when idle, else answers Scheduled and reboots after the last transaction
        (ScheduledReset). With evseId only that EVSE's transaction is ended."""
        status = self._status_or_none(mode)
        if status is None:
            return None
        if status != "Accepted":
            return Reply({"status": status})
        evse = payload.get("evseId")
        immediate = payload["type"] == "Immediate"
        if evse is not None:
            if not 1 <= int(evse) <= self.connectors:
                return Reply({"status": "Rejected"})

            async def reset_evse() -> None:
                if int(evse) in self.sessions:
                    await self.stop_session(int(evse), reason="ImmediateReset")

            if not immediate and int(evse) in self.sessions:
                return Reply({"status": "Scheduled"})
            return Reply({"status": "Accepted"}, rest=reset_evse)
        if not immediate and self.sessions:
            self._scheduled_reset = True
            return Reply({"status": "Scheduled"})

        async def reset() -> None:
            await self._perform_reset(hard=immediate, boot_reason="RemoteReset")

        return Reply({"status": "Accepted"}, rest=reset)

    async def _on_unlock_connector(self, payload: JSON, mode: Mode) -> Reply | None:
        """UnlockConnector (2.0.1 F05): UnknownConnector for a bad EVSE/connector,
        OngoingAuthorizedTransaction while a transaction runs."""
        status = self._status_or_none(mode, accepted="Unlocked", rejected="UnlockFailed")
        if status is None:
            return None
        evse, connector = int(payload["evseId"]), int(payload["connectorId"])
        if not 1 <= evse <= self.connectors or connector != 1:
            return Reply({"status": "UnknownConnector"})
        if status == "Unlocked" and evse in self.sessions:
            return Reply({"status": "OngoingAuthorizedTransaction"})
        return Reply({"status": status})

    def _apply_availability(self, evse: int, operative: bool) -> None:
        if operative:
            self.inoperative.discard(evse)
        else:
            self.inoperative.add(evse)

    async def _on_change_availability(self, payload: JSON, mode: Mode) -> Reply | None:
        """ChangeAvailability (2.0.1 G03/G04): no evse = whole station; Scheduled while a
        transaction runs; StatusNotification Unavailable/Available for affected EVSEs."""
        status = self._status_or_none(mode)
        if status is None:
            return None
        evse_obj = payload.get("evse")
        evse = 0 if evse_obj is None else int(evse_obj["id"])
        if status != "Accepted" or not 0 <= evse <= self.connectors:
            return Reply({"status": "Rejected"})
        operative = payload["operationalStatus"] == "Operative"
        affected = list(range(1, self.connectors + 1)) if evse == 0 else [evse]
        if evse == 0:
            self._apply_availability(0, operative)
        busy = [e for e in affected if e in self.sessions]
        for e in affected:
            if e in busy:
                self._scheduled_availability[e] = operative
            else:
                self._apply_availability(e, operative)
        targets = [e for e in affected if e not in busy and e not in self.faults]
        return self._status_reply("Scheduled" if busy else "Accepted", targets)

    async def _on_trigger_message(self, payload: JSON, mode: Mode) -> Reply | None:
        """TriggerMessage (2.0.1 F06): BootNotification is Rejected once already Accepted
        (F06.FR.17); unsupported messages NotImplemented."""
        status = self._status_or_none(mode, not_supported="NotImplemented")
        if status is None:
            return None
        if status != "Accepted":
            return Reply({"status": status})
        requested = str(payload["requestedMessage"])
        evse_obj = payload.get("evse")
        evse = None if evse_obj is None else int(evse_obj["id"])
        if evse is not None and not 1 <= evse <= self.connectors:
            return Reply({"status": "Rejected"})
        if requested == "BootNotification" and self.boot_status == "Accepted":
            return Reply({"status": "Rejected"})
        follow_up = self._triggered(requested, evse)
        if follow_up is None:
            return Reply({"status": "NotImplemented"})
        return Reply({"status": "Accepted"}, follow_up)

    def _triggered(self, requested: str, evse: int | None) -> FollowUp | None:
        """Coroutine function sending the triggered message, or None if unsupported."""
        evses = range(1, self.connectors + 1) if evse is None else [evse]

        async def boot() -> None:
            await self.send_boot("Triggered")

        async def heartbeat() -> None:
            await self.heartbeat()

        async def status() -> None:
            for e in evses:
                await self._report_current(e)

        async def meter_values() -> None:
            for e in evses:
                session = self.sessions.get(e)
                energy = session.energy_wh if session is not None else 0.0
                await self.send_meter_values(e, energy, context="Trigger")

        async def transaction_event() -> None:
            for e in evses:
                session = self.sessions.get(e)
                if session is not None:
                    await self._transaction_event(session, "Updated", "Trigger",
                                                  charging_state="Charging")

        async def log_status() -> None:
            state, request_id = self.log_status
            body: JSON = {"status": state}
            if request_id is not None:
                body["requestId"] = request_id
            await self.notify("LogStatusNotification", body)

        async def firmware() -> None:
            await self.notify("FirmwareStatusNotification", {"status": self.firmware_status})

        table: dict[str, FollowUp] = {
            "BootNotification": boot,
            "Heartbeat": heartbeat,
            "StatusNotification": status,
            "MeterValues": meter_values,
            "TransactionEvent": transaction_event,
            "LogStatusNotification": log_status,
            "FirmwareStatusNotification": firmware,
        }
        return table.get(requested)

    async def _on_get_variables(self, payload: JSON, mode: Mode) -> Reply | None:
        """GetVariables (2.0.1 B06); reject mode answers Rejected for every item."""
        if mode is Mode.NOT_SUPPORTED:
            return None
        results = []
        for item in payload["getVariableData"]:
            result = self.variables.get_variable(item)
            if mode is Mode.REJECT:
                result.pop("attributeValue", None)
                result["attributeStatus"] = "Rejected"
            results.append(result)
        return Reply({"getVariableResult": results})

    async def _on_set_variables(self, payload: JSON, mode: Mode) -> Reply | None:
        """SetVariables (2.0.1 B05); HeartbeatInterval applies at once, BasicAuthPassword on
        the next connection."""
        if mode is Mode.NOT_SUPPORTED:
            return None
        results = []
        for item in payload["setVariableData"]:
            if mode is Mode.REJECT:
                result: JSON = {"component": item["component"], "variable": item["variable"],
                                "attributeStatus": "Rejected"}
                results.append(result)
                continue
            result, changed = self.variables.set_variable(item)
            results.append(result)
            if changed is None:
                continue
            name = (item["component"]["name"], item["variable"]["name"])
            if name == ("OCPPCommCtrlr", "HeartbeatInterval"):
                self.set_heartbeat_interval(float(changed.value))
            elif name == ("SecurityCtrlr", "BasicAuthPassword"):
                self.password = changed.value
        return Reply({"setVariableResult": results})

    async def _on_get_base_report(self, payload: JSON, mode: Mode) -> Reply | None:
        """GetBaseReport (2.0.1 B07/B08): Accepted, then one NotifyReport with every variable
        (SummaryInventory: EmptyResultSet)."""
        status = self._status_or_none(mode, not_supported="NotSupported")
        if status is None:
            return None
        if status != "Accepted":
            return Reply({"status": status})
        if payload["reportBase"] == "SummaryInventory":
            return Reply({"status": "EmptyResultSet"})
        request_id = int(payload["requestId"])

        async def report() -> None:
            await self.notify(
                "NotifyReport",
                {
                    "requestId": request_id,
                    "generatedAt": utc_now_iso(),
                    "seqNo": 0,
                    "tbc": False,
                    "reportData": self.variables.report_data(),
                },
            )

        return Reply({"status": "Accepted"}, report)

    async def _on_request_start(self, payload: JSON, mode: Mode) -> Reply | None:
        """RequestStartTransaction (2.0.1 F01/F02): Accepted with the transactionId if an EVSE
        is free, then the session (triggerReason RemoteStart, remoteStartId)."""
        status = self._status_or_none(mode)
        if status is None:
            return None
        requested = payload.get("evseId")
        free = [e for e in range(1, self.connectors + 1) if self._status(e) == "Available"]
        evse = free[0] if requested is None and free else requested
        if status != "Accepted" or evse is None or evse not in free:
            return Reply({"status": "Rejected"})
        id_tag = str(payload["idToken"]["idToken"])
        remote_start_id = int(payload["remoteStartId"])
        tx_id = str(uuid.uuid4())
        authorize = self.variables.get("AuthCtrlr", "AuthorizeRemoteStart") == "true"

        async def start() -> None:
            try:
                await self.start_session(int(evse), id_tag, authorize=authorize,
                                         remote_start_id=remote_start_id, transaction_id=tx_id)
            except SessionRejected as exc:
                log.warning("%s: remote start refused: %s", self.station_id, exc)

        return Reply({"status": "Accepted", "transactionId": tx_id}, rest=start)

    async def _on_request_stop(self, payload: JSON, mode: Mode) -> Reply | None:
        """RequestStopTransaction (2.0.1 F03): Accepted for a running transaction, then
        TransactionEvent Ended (RemoteStop, stoppedReason Remote)."""
        status = self._status_or_none(mode)
        if status is None:
            return None
        tx = str(payload["transactionId"])
        evse = next((e for e, s in self.sessions.items() if s.transaction_id == tx), None)
        if status != "Accepted" or evse is None:
            return Reply({"status": "Rejected"})

        async def stop() -> None:
            if evse in self.sessions:
                await self.stop_session(evse, reason="Remote")

        return Reply({"status": "Accepted"}, rest=stop)
