"""Every version-neutral command, through the real server, to both simulators: the right OCPP
message goes out, and each way a station can answer becomes the right typed outcome."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from csms.app import CentralSystem
from diagnostics.commands import (
    ChangeAvailability,
    ClearCache,
    GetConfiguration,
    HardReset,
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
from simulators import Behaviour, Station16
from tests.conftest import MakeCentral
from tests.e2e.helpers import STATIONS, until

#: command -> (1.6 action, 2.0.1 action)
COMMANDS: list[tuple[StationCommand, str, str]] = [
    (SoftReset(), "Reset", "Reset"),
    (HardReset(), "Reset", "Reset"),
    (UnlockConnector(connector_id=1, evse_id=1), "UnlockConnector", "UnlockConnector"),
    (ChangeAvailability(operative=False, evse_id=1, connector_id=1), "ChangeAvailability",
     "ChangeAvailability"),
    (TriggerMessage(TriggerKind.STATUS_NOTIFICATION, evse_id=1, connector_id=1),
     "TriggerMessage", "TriggerMessage"),
    (GetConfiguration(keys=("HeartbeatInterval",)), "GetConfiguration", "GetVariables"),
    (SetConfiguration(key="MeterValueSampleInterval", value="30"), "ChangeConfiguration",
     "SetVariables"),
    (RequestLog(location="ftp://127.0.0.1:1/logs", request_id=7), "GetDiagnostics", "GetLog"),
    (RemoteStart(id_token="TAG-1", evse_id=1, connector_id=1), "RemoteStartTransaction",
     "RequestStartTransaction"),
    (ClearCache(), "ClearCache", "ClearCache"),
]
KEYS = {"1.6": "MeterValueSampleInterval", "2.0.1": "SampledDataCtrlr.TxUpdatedInterval"}


def _for_version(command: StationCommand, version: str) -> StationCommand:
    if isinstance(command, GetConfiguration) and version == "2.0.1":
        return GetConfiguration(keys=("OCPPCommCtrlr.HeartbeatInterval",))
    if isinstance(command, SetConfiguration):
        return SetConfiguration(key=KEYS[version], value="30")
    return command


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
@pytest.mark.parametrize(("command", "action16", "action201"), COMMANDS,
                         ids=[type(c[0]).__name__ for c in COMMANDS])
async def test_command_is_sent_and_accepted(
    central: CentralSystem, version: str, command: StationCommand, action16: str,
    action201: str,
) -> None:
    station_id = f"CMD-{version}"
    async with STATIONS[version](station_id, central.ocpp_url, connectors=2) as station:
        outcome = await central.execute(station_id, _for_version(command, version))
        assert outcome.status is OutcomeStatus.ACCEPTED, outcome
        received = station.received[-1]
        assert received.action == (action16 if version == "1.6" else action201)


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_reset_payloads_follow_the_version(central: CentralSystem, version: str) -> None:
    station_id = f"RESET-{version}"
    async with STATIONS[version](station_id, central.ocpp_url) as station:
        assert (await central.execute(station_id, SoftReset())).ok
        await until(lambda: station.boot_count >= 2)
        assert (await central.execute(station_id, HardReset())).ok
        await until(lambda: station.boot_count >= 3)
        types = [c.payload["type"] for c in station.received if c.action == "Reset"]
        assert types == (["Soft", "Hard"] if version == "1.6" else ["OnIdle", "Immediate"])
    stored = await central.store.get_station(station_id)
    assert stored is not None and stored.boot_count == 3


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("reject", OutcomeStatus.REJECTED),
        ("not_supported", OutcomeStatus.NOT_SUPPORTED),
        ("call_error", OutcomeStatus.CALL_ERROR),
        ("timeout", OutcomeStatus.TIMEOUT),
    ],
)
async def test_every_answer_becomes_a_typed_outcome(
    make_central: MakeCentral, version: str, mode: str, expected: OutcomeStatus
) -> None:
    central = await make_central(call_timeout=0.5)
    station_id = f"MODE-{version}-{mode}"
    behaviour = Behaviour(default_mode=mode)
    async with STATIONS[version](station_id, central.ocpp_url, behaviour=behaviour):
        for command in (UnlockConnector(connector_id=1, evse_id=1), SoftReset(), ClearCache()):
            outcome = await central.execute(station_id, command)
            assert outcome.status is expected, outcome
            if expected is OutcomeStatus.CALL_ERROR:
                assert outcome.error_code == "InternalError"
        # After a timeout the session still works for the next command.
        station = central.registry.get(station_id)
        assert station is not None


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_offline_station(central: CentralSystem, version: str) -> None:
    outcome = await central.execute("NOBODY", SoftReset())
    assert outcome.status is OutcomeStatus.OFFLINE
    station_id = f"GONE-{version}"
    station = STATIONS[version](station_id, central.ocpp_url)
    await station.start()
    await station.stop()
    await until(lambda: station_id not in central.registry)
    assert (await central.execute(station_id, ClearCache())).status is OutcomeStatus.OFFLINE


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_log_notification_before_call_result(central: CentralSystem, version: str) -> None:
    station_id = f"EARLY-{version}"
    behaviour = Behaviour(notify_before_result=True, duplicate_progress=True)
    async with STATIONS[version](station_id, central.ocpp_url, behaviour=behaviour) as station:
        outcome = await central.execute(
            station_id, RequestLog(location="http://127.0.0.1:1/upload", request_id=42,
                                   since=datetime(2026, 11, 20, tzinfo=UTC)))
        assert outcome.ok, outcome
        await until(lambda: len(station.sent) > 0)
        await asyncio.sleep(0.3)
    events = await central.store.events(station_id, kind="LogStatus")
    statuses = [e.detail.get("raw_status") for e in reversed(events)]  # newest first
    assert statuses[:2] == ["Uploading", "Uploading"], statuses
    assert statuses[-1] in {"UploadFailed", "UploadFailure"}  # nothing listens on port 1


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_remote_stop_of_a_running_session(central: CentralSystem, version: str) -> None:
    station_id = f"SESSION-{version}"
    async with STATIONS[version](station_id, central.ocpp_url) as station:
        await station.start_session(connector=1, id_tag="TAG-9")
        await station.send_meter_values(connector=1, energy_wh=1200.0)
        (transaction,) = await central.store.transactions(station_id)
        outcome = await central.execute(station_id, RemoteStop(transaction.transaction_id))
        assert outcome.ok, outcome
        await until(lambda: not station.sessions)
    (transaction,) = await central.store.transactions(station_id)
    assert transaction.stopped_at is not None
    assert transaction.id_token == "TAG-9"
    readings = await central.store.meter_readings(station_id)
    assert any(r.value == 1200.0 for r in readings)


async def test_remote_stop_with_a_non_integer_id_is_refused_for_16(
    central: CentralSystem,
) -> None:
    async with Station16("STOP-16", central.ocpp_url) as station:
        outcome = await central.execute("STOP-16", RemoteStop("abc"))
        assert outcome.status is OutcomeStatus.REJECTED
        assert not [c for c in station.received if c.action == "RemoteStopTransaction"]



async def test_16_security_extension_station_gets_get_log(central: CentralSystem) -> None:
    """A 1.6 station that speaks the security extension gets GetLog for its diagnostics;
    one that does not gets GetDiagnostics."""
    async with Station16("SECEXT-16", central.ocpp_url) as station:
        first = await central.execute("SECEXT-16", RequestLog(location="ftp://127.0.0.1:1/",
                                                              request_id=1))
        await station.call_action("SecurityEventNotification", {
            "type": "FirmwareUpdated", "timestamp": "2026-11-21T10:00:00Z"})
        second = await central.execute("SECEXT-16", RequestLog(location="ftp://127.0.0.1:1/",
                                                               request_id=2))
        assert first.action == "GetDiagnostics" and second.action == "GetLog"
        actions = [c.action for c in station.received if c.action in {"GetDiagnostics",
                                                                        "GetLog"}]
        assert actions == ["GetDiagnostics", "GetLog"]
        assert station.received[-1].payload["requestId"] == 2
