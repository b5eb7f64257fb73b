"""The messages a load-generator charger sends, as small integers (cheap to queue and count).

A message is built from its kind only when it is sent, so that a MeterValues queued behind a
1.6 StartTransaction carries the transactionId the CSMS answered.
"""

from __future__ import annotations

BOOT = 0
HEARTBEAT = 1
STATUS = 2
TX_START = 3
METER = 4
"""Meter values of the running session (1.6 MeterValues, 2.0.1 TransactionEvent Updated)."""
TX_STOP = 5
METER_PLAIN = 6
"""Meter values outside a session (a TriggerMessage answer)."""
LOG_STATUS = 7
FW_STATUS = 8

NAMES = (
    "BootNotification", "Heartbeat", "StatusNotification", "TransactionStart", "MeterValues",
    "TransactionStop", "TriggeredMeterValues", "LogStatusNotification",
    "FirmwareStatusNotification",
)
COUNT = len(NAMES)

# Connector states a charger reports (1.6 ChargePointStatus / 2.0.1 ConnectorStatusEnumType).
AVAILABLE = 0
RESERVED = 1
BUSY = 2
STATUS16 = ("Available", "Reserved", "Charging")
STATUS201 = ("Available", "Reserved", "Occupied")

# Steps of the fixed-rate cycle (one CALL each).
STEP_HEARTBEAT = 0
STEP_STATUS_CHANGE = 1
STEP_SESSION_START = 2
STEP_SESSION_STATUS = 3
STEP_METER = 4
STEP_SESSION_STOP = 5
STEP_IDLE_STATUS = 6


def rate_cycle(sessions: bool, meter_samples: int) -> tuple[int, ...]:
    """The CALLs one charger sends in turn in fixed-rate mode."""
    if not sessions:
        return (STEP_HEARTBEAT, STEP_STATUS_CHANGE)
    return (
        (STEP_HEARTBEAT, STEP_STATUS_CHANGE, STEP_SESSION_START, STEP_SESSION_STATUS)
        + (STEP_METER,) * meter_samples
        + (STEP_SESSION_STOP, STEP_IDLE_STATUS)
    )
