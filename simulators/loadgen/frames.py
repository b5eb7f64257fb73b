"""Pre-built OCPP-J frames as string templates: no models, no validation on the hot path.

Every template is a complete CALL ``[2, "<id>", "<Action>", {...}]`` with ``%`` slots for the
few values that change. The payloads are valid against the OCPP 1.6J and 2.0.1 JSON schemas
(the tests check each one with the ``ocpp`` library's validator).
"""

from __future__ import annotations

import time

VENDOR = "LoadGen"
MODEL = "LG-1"
FIRMWARE = "1.0"
ID_TAG = "LOADGEN-TAG"

_stamp_second = -1
_stamp_text = ""


def stamp() -> str:
    """UTC now as ``YYYY-MM-DDTHH:MM:SSZ`` (cached for the current second)."""
    global _stamp_second, _stamp_text
    now = int(time.time())
    if now != _stamp_second:
        _stamp_second = now
        _stamp_text = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    return _stamp_text


# ---------------------------------------------------------------------- OCPP 1.6J

BOOT16 = (
    '[2,"%s","BootNotification",{"chargePointVendor":"' + VENDOR + '","chargePointModel":"'
    + MODEL + '","firmwareVersion":"' + FIRMWARE + '"}]'
)
HEARTBEAT = '[2,"%s","Heartbeat",{}]'
STATUS16 = (
    '[2,"%s","StatusNotification",{"connectorId":%d,"errorCode":"NoError","status":"%s",'
    '"timestamp":"%s"}]'
)
START16 = (
    '[2,"%s","StartTransaction",{"connectorId":%d,"idTag":"' + ID_TAG + '","meterStart":%d,'
    '"timestamp":"%s"}]'
)
METER16 = (
    '[2,"%s","MeterValues",{"connectorId":%d,"transactionId":%d,"meterValue":[{"timestamp":"%s",'
    '"sampledValue":[{"value":"%d","context":"%s","measurand":"Energy.Active.Import.Register",'
    '"location":"Outlet","unit":"Wh"},{"value":"%d","context":"%s",'
    '"measurand":"Power.Active.Import","location":"Outlet","unit":"W"}]}]}]'
)
METER16_PLAIN = (
    '[2,"%s","MeterValues",{"connectorId":%d,"meterValue":[{"timestamp":"%s","sampledValue":'
    '[{"value":"%d","context":"Trigger","measurand":"Energy.Active.Import.Register",'
    '"location":"Outlet","unit":"Wh"}]}]}]'
)
STOP16 = (
    '[2,"%s","StopTransaction",{"meterStop":%d,"timestamp":"%s","transactionId":%d,'
    '"reason":"%s","idTag":"' + ID_TAG + '"}]'
)
DIAGNOSTICS_STATUS16 = '[2,"%s","DiagnosticsStatusNotification",{"status":"Idle"}]'
FIRMWARE_STATUS = '[2,"%s","FirmwareStatusNotification",{"status":"Idle"}]'


# ---------------------------------------------------------------------- OCPP 2.0.1

BOOT201 = (
    '[2,"%s","BootNotification",{"reason":"%s","chargingStation":{"model":"' + MODEL
    + '","vendorName":"' + VENDOR + '","firmwareVersion":"' + FIRMWARE + '"}}]'
)
STATUS201 = (
    '[2,"%s","StatusNotification",{"timestamp":"%s","connectorStatus":"%s","evseId":%d,'
    '"connectorId":1}]'
)
_ENERGY201 = (
    '{"value":%d,"context":"%s","measurand":"Energy.Active.Import.Register","location":"Outlet",'
    '"unitOfMeasure":{"unit":"Wh"}}'
)
_POWER201 = (
    '{"value":%d,"context":"%s","measurand":"Power.Active.Import","location":"Outlet",'
    '"unitOfMeasure":{"unit":"W"}}'
)
TX_STARTED201 = (
    '[2,"%s","TransactionEvent",{"eventType":"Started","timestamp":"%s",'
    '"triggerReason":"Authorized","seqNo":0,"transactionInfo":{"transactionId":"%s",'
    '"chargingState":"Charging"},"evse":{"id":%d,"connectorId":1},"idToken":{"idToken":"'
    + ID_TAG + '","type":"ISO14443"},"meterValue":[{"timestamp":"%s","sampledValue":['
    + (_ENERGY201 % (0, "Transaction.Begin")).replace('"value":0', '"value":%d') + "]}]}]"
)
TX_UPDATED201 = (
    '[2,"%s","TransactionEvent",{"eventType":"Updated","timestamp":"%s",'
    '"triggerReason":"%s","seqNo":%d,"transactionInfo":{"transactionId":"%s"},'
    '"evse":{"id":%d,"connectorId":1},"meterValue":[{"timestamp":"%s","sampledValue":['
    + _ENERGY201 + "," + _POWER201 + "]}]}]"
)
TX_ENDED201 = (
    '[2,"%s","TransactionEvent",{"eventType":"Ended","timestamp":"%s",'
    '"triggerReason":"%s","seqNo":%d,"transactionInfo":{"transactionId":"%s",'
    '"chargingState":"Idle","stoppedReason":"%s"},"evse":{"id":%d,"connectorId":1},'
    '"meterValue":[{"timestamp":"%s","sampledValue":['
    + (_ENERGY201 % (0, "Transaction.End")).replace('"value":0', '"value":%d') + "]}]}]"
)
METER201_PLAIN = (
    '[2,"%s","MeterValues",{"evseId":%d,"meterValue":[{"timestamp":"%s","sampledValue":['
    + (_ENERGY201 % (0, "Trigger")).replace('"value":0', '"value":%d') + "]}]}]"
)
LOG_STATUS201 = '[2,"%s","LogStatusNotification",{"status":"Idle"}]'


# ---------------------------------------------------------------------- answers


def result(uid: str, payload: str) -> str:
    """A CALLRESULT; ``uid`` is already a JSON string literal (quotes included)."""
    return f"[3,{uid},{payload}]"


def error(uid: str, code: str, description: str) -> str:
    """A CALLERROR; ``uid`` is already a JSON string literal (quotes included)."""
    return f'[4,{uid},"{code}","{description}",{{}}]'
