"""Minimal but valid answers of a load-generator charger to CALLs from the CSMS.

TriggerMessage is Accepted and the message is then sent (1.6 §5.17, 2.0.1 F06; a 2.0.1
BootNotification trigger is Rejected once booted, F06.FR.17), Reset Accepted (the charger
then reboots), GetConfiguration lists nothing (requested keys are unknown), ChangeAvailability
Accepted, UnlockConnector Unlocked, GetVariables Accepted per variable, GetBaseReport
EmptyResultSet, GetDiagnostics without a file, GetLog Rejected, ClearCache Accepted,
DataTransfer UnknownVendorId; anything else a CALLERROR NotImplemented.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

from simulators.loadgen.kinds import (
    BOOT,
    FW_STATUS,
    HEARTBEAT,
    LOG_STATUS,
    METER,
    METER_PLAIN,
    STATUS,
)

ACCEPTED = '{"status":"Accepted"}'
REJECTED = '{"status":"Rejected"}'
NOT_IMPLEMENTED = '{"status":"NotImplemented"}'


class Reply(NamedTuple):
    """What to answer: a CALLRESULT payload (JSON text) or a CALLERROR code, and what to do
    after answering: send a triggered message (kind, connector; 0 = every connector) or
    reboot."""

    payload: str | None
    error: str | None = None
    trigger: tuple[int, int] | None = None
    reset: bool = False


NOT_IMPLEMENTED_ERROR = Reply(None, "NotImplemented")


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def reply16(action: str, payload: dict[str, Any], *, connectors: int) -> Reply:
    """The answer of an OCPP 1.6 charger."""
    if action == "TriggerMessage":
        connector = _int(payload.get("connectorId"))
        if connector < 0 or connector > connectors:
            return Reply(REJECTED)
        kind = {
            "BootNotification": BOOT,
            "Heartbeat": HEARTBEAT,
            "StatusNotification": STATUS,
            "MeterValues": METER_PLAIN,
            "DiagnosticsStatusNotification": LOG_STATUS,
            "FirmwareStatusNotification": FW_STATUS,
        }.get(str(payload.get("requestedMessage")))
        if kind is None:
            return Reply(NOT_IMPLEMENTED)
        if kind == METER_PLAIN and connector == 0:
            connector = 1
        return Reply(ACCEPTED, trigger=(kind, connector))
    if action == "Reset":
        return Reply(ACCEPTED, reset=True)
    if action == "GetConfiguration":
        keys = [k for k in payload.get("key") or () if isinstance(k, str)][:50]
        if keys:
            return Reply('{"configurationKey":[],"unknownKey":'
                         + orjson.dumps([k[:50] for k in keys]).decode() + "}")
        return Reply('{"configurationKey":[]}')
    if action in ("ChangeAvailability", "ClearCache"):
        return Reply(ACCEPTED)
    if action == "UnlockConnector":
        return Reply('{"status":"Unlocked"}')
    if action == "GetDiagnostics":
        return Reply("{}")  # no fileName: nothing to upload (§6.22)
    if action == "GetLog":
        return Reply(REJECTED)
    if action == "DataTransfer":
        return Reply('{"status":"UnknownVendorId"}')
    return NOT_IMPLEMENTED_ERROR


def reply201(
    action: str, payload: dict[str, Any], *, connectors: int, booted: bool, in_session: bool
) -> Reply:
    """The answer of an OCPP 2.0.1 charger (one connector per EVSE)."""
    if action == "TriggerMessage":
        evse = payload.get("evse")
        connector = _int(evse.get("id")) if isinstance(evse, dict) else 0
        if connector < 0 or connector > connectors:
            return Reply(REJECTED)
        requested = str(payload.get("requestedMessage"))
        if requested == "BootNotification":
            return Reply(REJECTED) if booted else Reply(ACCEPTED, trigger=(BOOT, 0))
        if requested == "TransactionEvent":
            return Reply(ACCEPTED, trigger=(METER, 0)) if in_session else Reply(REJECTED)
        kind = {
            "Heartbeat": HEARTBEAT,
            "StatusNotification": STATUS,
            "MeterValues": METER_PLAIN,
            "LogStatusNotification": LOG_STATUS,
            "FirmwareStatusNotification": FW_STATUS,
        }.get(requested)
        if kind is None:
            return Reply(NOT_IMPLEMENTED)
        if kind == METER_PLAIN and connector == 0:
            connector = 1
        return Reply(ACCEPTED, trigger=(kind, connector))
    if action == "Reset":
        return Reply(ACCEPTED, reset=True)
    if action == "GetVariables":
        results = [
            {"attributeStatus": "Accepted", "attributeValue": "0",
             "component": item.get("component"), "variable": item.get("variable")}
            for item in payload.get("getVariableData") or ()
            if isinstance(item, dict)
        ]
        return Reply(orjson.dumps({"getVariableResult": results}).decode())
    if action == "GetBaseReport":
        return Reply('{"status":"EmptyResultSet"}')
    if action in ("ChangeAvailability", "ClearCache"):
        return Reply(ACCEPTED)
    if action == "UnlockConnector":
        return Reply('{"status":"Unlocked"}')
    if action == "GetLog":
        return Reply(REJECTED)
    if action == "DataTransfer":
        return Reply('{"status":"UnknownVendorId"}')
    return NOT_IMPLEMENTED_ERROR
