"""Each domain event is recorded as specified, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from csms.store import Store
from diagnostics.events import (
    ConnectorStatus,
    ConnectorStatusChanged,
    FaultReported,
    FirmwareProgress,
    HeartbeatReceived,
    LogUploadProgress,
    LogUploadStatus,
    MeterSample,
    MeterValuesReceived,
    SecurityEventReceived,
    StationBooted,
    StationConnected,
    StationDisconnected,
    StationEventNotified,
    StationReported,
    TransactionStarted,
)

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


def t(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def test_connect_creates_station_and_logs(store: Store) -> None:
    await store.record(
        StationConnected(station_id="CP1", at=t(0), protocol="1.6", remote_address="10.0.0.5")
    )
    station = await store.get_station("CP1")
    assert station is not None
    assert station.connected is True
    assert station.connected_node == "test-node"
    assert station.protocol == "1.6"
    assert station.registered_at == t(0)
    assert station.last_seen_at == t(0)
    assert station.boot_count == 0
    assert station.password_hash is None

    (entry,) = await store.connection_log("CP1")
    assert (entry.kind, entry.protocol, entry.remote_address, entry.at) == (
        "connected",
        "1.6",
        "10.0.0.5",
        t(0),
    )


async def test_disconnect_and_reconnect(store: Store) -> None:
    await store.record(StationConnected(station_id="CP1", at=t(0), protocol="1.6"))
    await store.record(StationDisconnected(station_id="CP1", at=t(5), reason="ping timeout"))
    station = await store.get_station("CP1")
    assert station is not None
    assert station.connected is False
    assert station.connected_node is None
    assert station.last_seen_at == t(5)

    await store.record(StationConnected(station_id="CP1", at=t(9), protocol="2.0.1"))
    station = await store.get_station("CP1")
    assert station is not None and station.connected and station.protocol == "2.0.1"
    assert station.registered_at == t(0)

    log = await store.connection_log("CP1")
    assert [(e.kind, e.detail) for e in log] == [
        ("connected", None),
        ("disconnected", "ping timeout"),
        ("connected", None),
    ][::-1]


async def test_disconnect_from_another_node_keeps_newer_connection(store: Store) -> None:
    other = Store(store.db, node="node-b")
    await other.record(StationConnected(station_id="CP1", at=t(0), protocol="1.6"))
    await store.record(StationDisconnected(station_id="CP1", at=t(1), reason="late close"))
    station = await store.get_station("CP1")
    assert station is not None and station.connected and station.connected_node == "node-b"


async def test_boot_updates_identity_and_counts(store: Store) -> None:
    await store.record(StationConnected(station_id="CP1", at=t(0), protocol="2.0.1"))
    await store.record(
        StationBooted(
            station_id="CP1",
            at=t(1),
            vendor="Acme",
            model="Fast 1",
            serial_number="S-1",
            firmware_version="1.0",
            reason="PowerUp",
        )
    )
    await store.record(
        StationBooted(
            station_id="CP1", at=t(60), vendor="Acme", model="Fast 1", firmware_version="1.1"
        )
    )
    station = await store.get_station("CP1")
    assert station is not None
    assert (station.vendor, station.model, station.firmware_version) == ("Acme", "Fast 1", "1.1")
    assert station.serial_number is None  # the latest boot is the truth
    assert station.boot_count == 2
    assert station.last_boot_at == t(60)
    assert station.last_boot_reason is None
    assert station.last_seen_at == t(60)
    assert station.connected is True  # a boot does not touch the connection state


async def test_boot_of_unknown_station_registers_it(store: Store) -> None:
    await store.record(StationBooted(station_id="NEW", at=t(3), vendor="V", model="M"))
    station = await store.get_station("NEW")
    assert station is not None
    assert station.boot_count == 1 and station.registered_at == t(3)
    assert station.connected is False


async def test_heartbeat_moves_last_seen_forward_only(store: Store) -> None:
    await store.record(HeartbeatReceived(station_id="CP1", at=t(10)))
    await store.record(HeartbeatReceived(station_id="CP1", at=t(5)))  # late delivery
    station = await store.get_station("CP1")
    assert station is not None
    assert station.last_seen_at == t(10)
    assert station.registered_at == t(10)
    assert station.updated_at == t(10)  # heartbeats only move last_seen_at
    await store.record(HeartbeatReceived(station_id="CP1", at=t(20)))
    station = await store.get_station("CP1")
    assert station is not None and station.last_seen_at == t(20)
    assert station.updated_at == t(10)


async def test_status_upserts_connector_and_appends_history(store: Store) -> None:
    def status(
        at: float, connector: int, raw: str, evse: int | None = None, **kw: str
    ) -> ConnectorStatusChanged:
        return ConnectorStatusChanged(
            station_id="CP1",
            at=t(at),
            connector_id=connector,
            evse_id=evse,
            status=ConnectorStatus.parse(raw),
            raw_status=raw,
            **kw,  # type: ignore[arg-type]
        )

    await store.record(status(0, 1, "Available", error_code="NoError"))
    await store.record(status(1, 0, "Available", error_code="NoError"))
    await store.record(
        status(
            2, 1, "Faulted", error_code="GroundFailure", vendor_id="Acme", vendor_error_code="E7"
        )
    )
    await store.record(status(3, 2, "Occupied", evse=1))  # 2.0.1
    await store.record(status(1.5, 1, "Charging"))  # arrives late: history only

    connectors = await store.connectors("CP1")
    assert [(c.evse_id, c.connector_id, c.status) for c in connectors] == [
        (0, 0, "Available"),
        (0, 1, "Faulted"),
        (1, 2, "Occupied"),
    ]
    faulted = connectors[1]
    assert faulted.error_code == "GroundFailure"
    assert faulted.vendor_id == "Acme" and faulted.vendor_error_code == "E7"
    assert faulted.updated_at == t(2)

    history = await store.status_history("CP1")
    assert [(h.connector_id, h.status, h.at) for h in history] == [
        (2, "Occupied", t(3)),
        (1, "Faulted", t(2)),
        (1, "Charging", t(1.5)),
        (0, "Available", t(1)),
        (1, "Available", t(0)),
    ]
    assert history[0].evse_id == 1 and history[1].evse_id == 0
    assert len(await store.status_history("CP1", limit=2)) == 2

    station = await store.get_station("CP1")
    assert station is not None and station.last_seen_at == t(3)


async def test_unknown_status_keeps_raw(store: Store) -> None:
    await store.record(
        ConnectorStatusChanged(
            station_id="CP1",
            at=t(0),
            connector_id=1,
            evse_id=None,
            status=ConnectorStatus.parse("Broken\x00Thing"),
            raw_status="Broken\x00Thing",
            station_time=datetime(2025, 3, 1, 13, 0, tzinfo=UTC),
        )
    )
    (connector,) = await store.connectors("CP1")
    assert connector.status == "Unknown"
    assert connector.raw_status == "Broken\ufffdThing"  # NUL cannot be stored in PostgreSQL
    (entry,) = await store.status_history("CP1")
    assert entry.station_time == datetime(2025, 3, 1, 13, 0, tzinfo=UTC)


async def test_faults(store: Store) -> None:
    await store.record(
        FaultReported(
            station_id="CP1",
            at=t(0),
            connector_id=1,
            evse_id=None,
            code="GroundFailure",
            vendor_id="Acme",
            vendor_code="E7",
            info="earth leak",
        )
    )
    await store.record(
        FaultReported(
            station_id="CP1",
            at=t(5),
            connector_id=1,
            evse_id=2,
            code="Problem",
            component="Connector",
            variable="Problem",
            cleared=True,
        )
    )
    cleared, fault = await store.events("CP1")
    assert (fault.kind, fault.code, fault.vendor_code, fault.connector_id, fault.cleared) == (
        "Fault",
        "GroundFailure",
        "E7",
        1,
        False,
    )
    assert fault.detail["event"] == "FaultReported"
    assert fault.detail["info"] == "earth leak"
    assert fault.detail["vendor_id"] == "Acme"
    assert fault.detail["at"] == "2025-03-01T12:00:00+00:00"
    assert (cleared.kind, cleared.component, cleared.variable, cleared.evse_id) == (
        "FaultCleared",
        "Connector",
        "Problem",
        2,
    )
    assert cleared.cleared is True
    assert [e.kind for e in await store.events("CP1", kind="Fault")] == ["Fault"]


async def test_meter_values_link_to_known_transaction(store: Store) -> None:
    await store.record(
        TransactionStarted(
            station_id="CP1",
            at=t(0),
            transaction_id="tx-1",
            connector_id=1,
            evse_id=1,
            id_token="TAG",
            meter_start_wh=100.0,
            started_at=t(0),
        )
    )
    samples = (
        MeterSample(timestamp=t(10), value=150.0, unit="Wh", context="Sample.Periodic"),
        MeterSample(
            timestamp=t(10),
            value=16.5,
            measurand="Current.Import",
            unit="A",
            phase="L1",
            location="Outlet",
        ),
        MeterSample(timestamp=t(10), value=float("nan"), measurand="Voltage"),
    )
    await store.record(
        MeterValuesReceived(
            station_id="CP1",
            at=t(11),
            connector_id=1,
            evse_id=1,
            transaction_id="tx-1",
            samples=samples,
        )
    )
    await store.record(
        MeterValuesReceived(
            station_id="CP1",
            at=t(20),
            connector_id=1,
            evse_id=None,
            transaction_id="unknown-tx",
            samples=(MeterSample(timestamp=t(19), value=1.0),),
        )
    )
    await store.record(
        MeterValuesReceived(
            station_id="CP1",
            at=t(21),
            connector_id=0,
            evse_id=None,
            transaction_id=None,
            samples=(),
        )
    )
    (transaction,) = await store.transactions("CP1")
    readings = await store.meter_readings("CP1")
    assert len(readings) == 3  # NaN dropped, empty message adds nothing
    assert readings[0].transaction_pk is None and readings[0].timestamp == t(19)

    linked = await store.meter_readings("CP1", transaction.id)
    assert {(r.measurand, r.value, r.unit, r.phase) for r in linked} == {
        ("Energy.Active.Import.Register", 150.0, "Wh", None),
        ("Current.Import", 16.5, "A", "L1"),
    }
    assert {r.context for r in linked} == {"Sample.Periodic", None}
    assert all(r.evse_id == 1 and r.connector_id == 1 for r in linked)
    station = await store.get_station("CP1")
    assert station is not None and station.last_seen_at == t(21)


async def test_log_firmware_security_notify_and_reports(store: Store) -> None:
    await store.record(
        LogUploadProgress(
            station_id="CP1",
            at=t(0),
            status=LogUploadStatus.parse("UploadFailure"),
            raw_status="UploadFailure",
            request_id=7,
        )
    )
    await store.record(FirmwareProgress(station_id="CP1", at=t(1), status="Installed"))
    await store.record(
        SecurityEventReceived(
            station_id="CP1",
            at=t(2),
            kind="TamperDetectionActivated",
            tech_info="door open",
            station_time=t(1.5),
        )
    )
    await store.record(
        StationEventNotified(
            station_id="CP1",
            at=t(3),
            event_id=42,
            component="EVSE",
            variable="Problem",
            actual_value="true",
            trigger="Alerting",
            evse_id=1,
            tech_code="OVT",
            event_type="HardWiredNotification",
        )
    )
    await store.record(
        StationReported(
            station_id="CP1",
            at=t(4),
            kind="DataTransfer",
            payload={"vendorId": "com.acme", "messageId": "x", "data": {"n": [1, 2.5]}},
        )
    )
    await store.record(
        StationReported(station_id="CP1", at=t(5), kind="NotifyReport", payload={"requestId": 1})
    )

    by_kind = {e.kind: e for e in await store.events("CP1")}
    assert set(by_kind) == {
        "LogStatus",
        "FirmwareStatus",
        "SecurityEvent",
        "NotifyEvent",
        "DataTransfer",
        "NotifyReport",
    }
    log = by_kind["LogStatus"]
    assert log.code == "UploadFailed"
    assert log.detail["raw_status"] == "UploadFailure" and log.detail["request_id"] == 7
    assert by_kind["FirmwareStatus"].code == "Installed"
    security = by_kind["SecurityEvent"]
    assert security.code == "TamperDetectionActivated"
    assert security.detail["tech_info"] == "door open"
    assert security.detail["station_time"] == "2025-03-01T12:00:01.500000+00:00"
    notify = by_kind["NotifyEvent"]
    assert (notify.component, notify.variable, notify.code, notify.vendor_code) == (
        "EVSE",
        "Problem",
        "true",
        "OVT",
    )
    assert notify.evse_id == 1 and notify.cleared is False
    assert notify.detail["event_id"] == 42 and notify.detail["trigger"] == "Alerting"
    transfer = by_kind["DataTransfer"]
    assert transfer.code == "com.acme"
    assert transfer.detail["payload"]["data"] == {"n": [1, 2.5]}
    assert by_kind["NotifyReport"].detail["payload"] == {"requestId": 1}

    station = await store.get_station("CP1")
    assert station is not None and station.last_seen_at == t(5)


async def test_every_event_creates_unknown_station(store: Store) -> None:
    await store.record(FirmwareProgress(station_id="AUTO", at=t(0), status="Idle"))
    assert [s.id for s in await store.list_stations()] == ["AUTO"]


async def test_refused_connections_are_logged_without_station(store: Store) -> None:
    await store.record_refused("STRANGER", t(0), "unknown station", "192.0.2.1")
    await store.record_refused("X" * 100, t(1), "bad identity", None)
    (entry,) = await store.connection_log("STRANGER")
    assert (entry.kind, entry.detail, entry.remote_address) == (
        "refused",
        "unknown station",
        "192.0.2.1",
    )
    assert len(await store.connection_log("X" * 64)) == 1
    assert await store.get_station("STRANGER") is None
    assert await store.list_stations() == []


async def test_mark_all_disconnected(store: Store) -> None:
    for index, node in enumerate(["test-node", "test-node", "node-b"]):
        await Store(store.db, node=node).record(
            StationConnected(station_id=f"CP{index}", at=t(index), protocol="1.6")
        )
    await Store(store.db).record(StationConnected(station_id="CP9", at=t(9), protocol="1.6"))
    await store.record(HeartbeatReceived(station_id="IDLE", at=t(0)))

    assert await store.mark_all_disconnected("test-node") == 3  # CP0, CP1 and node-less CP9
    connected = {s.id: (s.connected, s.connected_node) for s in await store.list_stations()}
    assert connected == {
        "CP0": (False, None),
        "CP1": (False, None),
        "CP2": (True, "node-b"),
        "CP9": (False, None),
        "IDLE": (False, None),
    }
    latest = (await store.connection_log("CP0"))[0]
    assert latest.kind == "disconnected" and latest.detail == "server restarted"

    assert await store.mark_all_disconnected() == 1  # everything left: CP2
    assert await store.mark_all_disconnected() == 0
