"""Fleet mode (:mod:`simulators.loadgen`) against the real central system, on real sockets."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from ocpp.messages import Call, CallResult, _validate_payload
from websockets.asyncio.server import ServerConnection, serve

from csms.app import CentralSystem
from csms.security.passwords import hash_password
from diagnostics.commands import (
    ChangeAvailability,
    GetConfiguration,
    OutcomeStatus,
    RemoteStart,
    RequestLog,
    SoftReset,
    StationCommand,
    TriggerKind,
    TriggerMessage,
    UnlockConnector,
)
from simulators import cli as sim_cli
from simulators.loadgen import Histogram, LoadConfig, LoadFleet, Stats
from simulators.loadgen import kinds as k
from simulators.loadgen.answers import reply16, reply201
from simulators.loadgen.charger import Charger
from simulators.loadgen.histogram import bucket_bounds, bucket_of
from simulators.loadgen.wire import INVALID, Link, build_request, new_key
from tests.conftest import MakeCentral
from tests.e2e.helpers import until

SQLITE_ONLY = pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    """Poll an async condition (database reads) until it holds."""
    async with asyncio.timeout(timeout):
        while not await check():  # noqa: ASYNC110 - the database sends no signal
            await asyncio.sleep(0.05)


@pytest.fixture
async def fleets() -> AsyncIterator[Callable[[LoadConfig], Awaitable[LoadFleet]]]:
    """Start load fleets; every one is stopped (websockets closed) at teardown."""
    started: list[LoadFleet] = []

    async def start(config: LoadConfig) -> LoadFleet:
        fleet = LoadFleet(config)
        started.append(fleet)
        await fleet.start()
        return fleet

    yield start
    for fleet in started:
        await fleet.stop()


def config(central: CentralSystem, **options: Any) -> LoadConfig:
    options.setdefault("duration", 60.0)
    options.setdefault("status_interval", 0)
    options.setdefault("sessions", False)
    options.setdefault("reconnect_delay", 0.1)
    return LoadConfig(url=central.ocpp_url, **options)


# ---------------------------------------------------------------------- against the CSMS


@SQLITE_ONLY
async def test_storm_of_200_mixed_chargers_boots_all_and_reports_connectors(
    central: CentralSystem, fleets: Callable[[LoadConfig], Awaitable[LoadFleet]]
) -> None:
    cfg = config(central, count=200, mix=0.5, id_prefix="STORM-", connectors=2)
    fleet = await fleets(cfg)
    assert await fleet.wait_booted(60), fleet.stats.line()
    await until(lambda: fleet.stats.results >= 200 * 3, timeout=30)  # boot + 2 statuses each

    stations = {st.id: st for st in await central.store.list_stations()}
    expected = {cfg.charger_id(n) for n in range(1, 201)}
    assert expected <= set(stations)
    assert all(stations[sid].connected for sid in expected)
    protocols = [stations[sid].protocol for sid in sorted(expected)]
    assert protocols.count("2.0.1") == 100 and protocols.count("1.6") == 100
    for sid in sorted(expected):
        connectors = await central.store.connectors(sid)
        points = [(c.evse_id, c.connector_id, c.status) for c in connectors]
        if stations[sid].protocol == "1.6":
            assert points == [(0, 1, "Available"), (0, 2, "Available")]
        else:
            assert points == [(1, 1, "Available"), (2, 1, "Available")]

    stats = await fleet.stop()
    assert stats.ever_booted == stats.boots == 200 and stats.chargers == 200
    assert stats.connected == stats.booted == 0
    assert stats.boot.count == 200 and stats.handshake.count == 200
    assert stats.boot.quantile(0.5) is not None and stats.boot.quantile(0.99) is not None
    assert stats.all_booted_after is not None
    assert stats.calls_sent == stats.results and stats.call_errors == 0
    assert stats.refused == {} and stats.timeouts == 0
    data = json.loads(json.dumps(stats.to_dict()))
    assert data["connections"]["ever_booted"] == 200
    assert data["boot"]["p50_s"] is not None and data["boot"]["p99_s"] is not None
    assert data["memory"]["rss_per_charger_bytes"] is not None
    await eventually(lambda: _none_connected(central, expected))


@SQLITE_ONLY
async def test_reconnect_storm_drops_everyone_and_measures_the_reboot(
    central: CentralSystem,
) -> None:
    cfg = config(central, count=50, id_prefix="RS-", duration=0.2, reconnect_storm=True,
                 reconnect_delay=30.0)  # only the storm brings them back in time
    stats = await LoadFleet(cfg).run()
    assert stats.ever_booted == 50 and stats.boots == 100
    assert stats.storm_boot.count == 50 and stats.storm_all_booted_after is not None
    assert stats.storm_boot.quantile(0.99) is not None
    assert stats.storm_all_booted_after <= stats.storm_boot.max_us / 1e6 + 1e-6
    assert stats.disconnects == 100 and stats.reconnects == 50  # dropped, closed at the end
    assert stats.call_errors == 0 and stats.refused == {}
    assert stats.to_dict()["reconnect_storm"]["all_booted_after_s"] is not None
    log = await central.store.connection_log(cfg.charger_id(7))
    assert [entry.kind for entry in log].count("connected") == 2


async def _none_connected(central: CentralSystem, ids: set[str]) -> bool:
    return not any(st.connected for st in await central.store.list_stations() if st.id in ids)


async def _sessions_recorded(central: CentralSystem, station_id: str) -> None:
    transactions = await central.store.transactions(station_id)
    ended = [tx for tx in transactions if tx.stopped_at is not None]
    assert ended, f"{station_id}: no finished transaction"
    assert all(tx.meter_stop_wh is not None and tx.meter_start_wh is not None
               and tx.meter_stop_wh - tx.meter_start_wh >= 500 for tx in ended)
    readings = await central.store.meter_readings(station_id)
    assert {r.measurand for r in readings} >= {"Energy.Active.Import.Register",
                                               "Power.Active.Import"}


async def test_fixed_rate_with_sessions_is_recorded_and_fully_answered(
    central: CentralSystem,
) -> None:
    cfg = config(central, count=20, mix=0.5, id_prefix="RATE-", rate=200, duration=60,
                 sessions=True, meter_samples=2, drain_timeout=15)
    fleet = LoadFleet(cfg)
    running = asyncio.create_task(fleet.run())
    try:
        # Every charger started its second session: its first one was answered to the end.
        await until(lambda: len(fleet.chargers) == 20
                    and all(ch.sessions >= 2 for ch in fleet.chargers), timeout=60)
    finally:
        fleet.request_stop()
        stats = await running
    assert stats.ever_booted == 20
    assert stats.rate_calls > 0 and stats.rate_duration > 0
    assert stats.call_errors == 0, stats.call_errors_by_code
    assert stats.timeouts == stats.lost == 0
    assert stats.results == stats.calls_sent  # drained: every CALL sent was answered
    assert stats.latency.count == stats.rate_calls > 0  # CALLs due in the rate phase only
    by_action = stats.to_dict()["latency_by_action"]
    assert sum(h["count"] for h in by_action.values()) == stats.latency.count
    assert by_action["MeterValues"]["p99_s"] is not None
    sent = stats.sent_by_action
    assert sent["TransactionStart"] >= 40 and sent["TransactionStop"] >= 20
    assert sent["MeterValues"] >= 40
    for number in (1, 2):  # one 1.6 and one 2.0.1 charger
        await _sessions_recorded(central, cfg.charger_id(number))


@SQLITE_ONLY
async def test_timer_mode_heartbeats_status_changes_and_sessions(
    central: CentralSystem, fleets: Callable[[LoadConfig], Awaitable[LoadFleet]]
) -> None:
    cfg = config(central, count=6, id_prefix="TIMER-", heartbeat_interval=0.1,
                 status_interval=0.1, sessions=True, session_interval=0.05,
                 meter_interval=0.05, meter_samples=2)
    fleet = await fleets(cfg)
    sent = fleet.stats.sent_by_kind
    await until(lambda: min(sent[k.TX_STOP], sent[k.HEARTBEAT]) >= 12 and sent[k.STATUS] >= 40,
                timeout=20)
    stats = await fleet.stop()
    assert stats.call_errors == 0, stats.call_errors_by_code
    assert stats.results == stats.calls_sent
    history = await central.store.status_history(cfg.charger_id(1))
    assert {"Reserved", "Charging"} <= {h.raw_status for h in history}
    history = await central.store.status_history(cfg.charger_id(2))
    assert {"Reserved", "Occupied"} <= {h.raw_status for h in history}
    for number in (1, 2):
        await _sessions_recorded(central, cfg.charger_id(number))


@SQLITE_ONLY
async def test_commands_from_the_csms_are_answered(
    make_central: MakeCentral, fleets: Callable[[LoadConfig], Awaitable[LoadFleet]]
) -> None:
    # Pings every 0.1 s: a charger that did not answer them would be dropped within 1.1 s.
    central = await make_central(ping_interval=0.1, ping_timeout=1.0)
    cfg = config(central, count=2, mix=0.5, id_prefix="CMD-", connectors=2)
    fleet = await fleets(cfg)
    assert await fleet.wait_booted(20)
    stats = fleet.stats

    async def ask(station_id: str, command: StationCommand) -> OutcomeStatus:
        return (await central.execute(station_id, command)).status

    for number, v201 in ((1, False), (2, True)):
        sid = cfg.charger_id(number)
        assert fleet.charger(sid).v201 is v201
        for kind, counter in ((TriggerKind.HEARTBEAT, k.HEARTBEAT),
                              (TriggerKind.STATUS_NOTIFICATION, k.STATUS),
                              (TriggerKind.METER_VALUES, k.METER_PLAIN),
                              (TriggerKind.LOG_STATUS, k.LOG_STATUS),
                              (TriggerKind.FIRMWARE_STATUS, k.FW_STATUS)):
            before = stats.sent_by_kind[counter]
            assert await ask(sid, TriggerMessage(kind=kind)) is OutcomeStatus.ACCEPTED
            await until(sent_and_answered(stats, counter, before))
        boot = TriggerMessage(kind=TriggerKind.BOOT_NOTIFICATION)
        assert await ask(sid, boot) is (OutcomeStatus.REJECTED if v201
                                        else OutcomeStatus.ACCEPTED)
        assert await ask(sid, UnlockConnector(connector_id=1, evse_id=1)) is (
            OutcomeStatus.ACCEPTED)
        assert await ask(sid, ChangeAvailability(operative=True)) is OutcomeStatus.ACCEPTED
        keys = ("Connector[1].Enabled",) if v201 else ()
        assert await ask(sid, GetConfiguration(keys=keys)) is OutcomeStatus.ACCEPTED
        log = RequestLog(location="http://127.0.0.1:1/upload", request_id=7)
        assert await ask(sid, log) is OutcomeStatus.REJECTED
        assert await ask(sid, RemoteStart(id_token="T1", evse_id=1, connector_id=1)) is (
            OutcomeStatus.NOT_SUPPORTED)
    assert stats.csms_not_implemented == 2

    boots = stats.boots
    for number in (1, 2):
        assert await ask(cfg.charger_id(number), SoftReset()) is OutcomeStatus.ACCEPTED
    await until(lambda: stats.boots >= boots + 2 and stats.booted == 2, timeout=10)
    pings = stats.pings
    await until(lambda: stats.pings >= pings + 40, timeout=20)  # 2 s of pings at least
    assert stats.resets == 2 and stats.reconnects == 2
    assert stats.disconnects == 2  # the resets only: every server ping was answered
    assert stats.call_errors == 0 and stats.bad_frames == 0
    connections = await central.store.connection_log(cfg.charger_id(2))
    assert len([c for c in connections if c.kind == "connected"]) == 2


def sent_and_answered(stats: Stats, kind: int, before: int) -> Callable[[], bool]:
    """More CALLs of ``kind`` than ``before`` were sent, and nothing is in flight."""
    return lambda: stats.sent_by_kind[kind] > before and stats.in_flight == 0


@SQLITE_ONLY
async def test_basic_auth_and_refused_handshakes(
    central: CentralSystem, fleets: Callable[[LoadConfig], Awaitable[LoadFleet]]
) -> None:
    cfg = config(central, count=3, id_prefix="AUTH-", connect="ramp", ramp_rate=50,
                 max_handshakes=1, reconnect=False)
    for number in range(1, 4):
        await central.store.ensure_station(cfg.charger_id(number))
        await central.store.set_password_hash(cfg.charger_id(number), hash_password("s3cret"))
    refused = await fleets(cfg)
    await until(lambda: sum(refused.stats.refused.values()) == 3, timeout=10)
    assert refused.stats.refused == {"401": 3} and refused.stats.ever_booted == 0
    assert refused.stats.connected == 0

    allowed = await fleets(cfg.with_(password="s3cret", reconnect=True))
    assert await allowed.wait_booted(10)
    assert allowed.stats.refused == {}


@SQLITE_ONLY
async def test_cli_over_two_processes_merges_their_stats(
    central: CentralSystem, tmp_path: Path
) -> None:
    out = tmp_path / "load.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulators.loadgen", "--url", central.ocpp_url,
        "--count", "20", "--processes", "2", "--duration", "1.5", "--rate", "100",
        "--id-prefix", "CLI-", "--json", str(out), "--progress", "--reconnect-storm",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    async with asyncio.timeout(90):
        stdout, stderr = await proc.communicate()
    assert proc.returncode == 0, stderr.decode()
    assert "all booted after" in stdout.decode()
    assert "connected" in stderr.decode()  # --progress lines
    data = json.loads(out.read_text())
    assert data["processes"] == 2 and data["chargers"] == 20
    assert data["connections"]["ever_booted"] == 20
    assert data["messages"]["call_errors"] == 0
    assert 0 < data["latency"]["count"] <= data["rate"]["calls"]
    assert data["config"]["count"] == 20
    assert data["storm_boot"]["count"] == 20  # both processes dropped and reconnected
    assert data["reconnect_storm"]["all_booted_after_s"] is not None
    assert "reconnect storm: all booted again after" in stdout.decode()
    merged = Stats.from_dict(data)
    assert merged.latency.count == data["latency"]["count"]
    ids = {st.id for st in await central.store.list_stations()}
    assert {f"CLI-{n:03d}" for n in range(1, 21)} <= ids


def test_csms_sim_fleet_subcommand_and_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        sim_cli.main(["fleet", "--help"])
    assert exit_info.value.code == 0
    assert "--max-handshakes" in capsys.readouterr().out
    assert sim_cli.main(["fleet", "--count", "0"]) == 2
    assert "count must be >= 1" in capsys.readouterr().err


# ---------------------------------------------------------------------- echo server


async def test_echo_mode_against_a_bare_websockets_echo_server() -> None:
    async def echo(ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(message)

    def select(_: ServerConnection, offered: Any) -> Any:
        return offered[0] if offered else None

    async with serve(echo, "127.0.0.1", 0, select_subprotocol=select, compression=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        cfg = LoadConfig(url=f"ws://127.0.0.1:{port}/echo", count=10, rate=200, duration=1.0,
                         echo=True, sessions=True, meter_samples=2)
        stats = await LoadFleet(cfg).run()
    assert stats.ever_booted == 10 and stats.call_errors == 0
    assert stats.results == stats.calls_sent and stats.rate_calls > 0


class Recorder:
    """A :class:`Link` owner that keeps what arrives."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.opened = self.lost = self.pings = 0

    def on_open(self, link: Link) -> None:
        self.opened += 1

    def on_text(self, data: bytes) -> None:
        self.messages.append(data)

    def on_lost(self, link: Link) -> None:
        self.lost += 1

    def on_ping(self) -> None:
        self.pings += 1


async def test_wire_handshake_framing_and_close_against_websockets() -> None:
    big, medium = "x" * 70_000, "y" * 300
    received: list[str] = []

    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None and ws.request.path == "/ocpp/CP%2F1"
        assert ws.request.headers["Authorization"] == "Basic Q1AvMTpwdw=="  # CP/1:pw
        await ws.send(medium)
        await ws.send(big)
        await ws.send(["frag", "mented"])  # a fragmented message
        await ws.ping(b"hi")
        async for message in ws:
            received.append(str(message))
            if message == "bye":
                await ws.send("done")

    def select(_: ServerConnection, offered: Any) -> Any:
        return "ocpp2.0.1" if "ocpp2.0.1" in offered else None

    async with serve(handler, "127.0.0.1", 0, select_subprotocol=select,
                     compression=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        loop = asyncio.get_running_loop()
        owner = Recorder()
        key = new_key()
        request = build_request("127.0.0.1", port, "/ocpp", "CP/1", "ocpp2.0.1", key, "pw")
        outcome: asyncio.Future[int] = loop.create_future()
        _, link = await loop.create_connection(
            lambda: Link(owner, request, key, "ocpp2.0.1", outcome), "127.0.0.1", port)
        assert await outcome == 101 and owner.opened == 1 and link.handshake is None
        await until(lambda: len(owner.messages) == 3 and owner.pings == 1)
        assert owner.messages == [medium.encode(), big.encode(), b"fragmented"]
        link.send(big)
        link.send("bye")
        await until(lambda: len(owner.messages) == 4)
        assert received == [big, "bye"] and owner.messages[3] == b"done"
        link.close()
        await until(lambda: owner.lost == 1)

        # A subprotocol the server does not speak: the handshake is not accepted.
        refused: asyncio.Future[int] = loop.create_future()
        request = build_request("127.0.0.1", port, "/ocpp", "CP2", "ocpp1.6", key, None)
        await loop.create_connection(
            lambda: Link(Recorder(), request, key, "ocpp1.6", refused), "127.0.0.1", port)
        assert await refused in (INVALID, 400)


# ---------------------------------------------------------------------- frames and answers


def _frames(v201: bool) -> list[list[Any]]:
    fleet = LoadFleet(LoadConfig(url="ws://127.0.0.1:1/ocpp", count=1))
    charger = Charger(fleet, 1, "X", v201)
    out = []

    def build(kind: int, arg: int = 0) -> tuple[int, Any]:
        built_kind, text = charger._build(kind, arg, "u1")
        return built_kind, json.loads(text)

    assert build(k.METER)[0] == k.HEARTBEAT  # no session: a heartbeat instead
    for kind, arg in ((k.BOOT, 0), (k.HEARTBEAT, 0), (k.STATUS, 1 << 3 | k.AVAILABLE),
                      (k.STATUS, 2 << 3 | k.RESERVED), (k.STATUS, 1 << 3 | k.BUSY),
                      (k.METER_PLAIN, 1), (k.LOG_STATUS, 0), (k.FW_STATUS, 0),
                      (k.TX_START, 1)):
        out.append(build(kind, arg)[1])
    charger.tx_conn = 1
    if not v201:
        charger.tx = 42  # as answered by the CSMS
    for kind, arg in ((k.METER, 0), (k.METER, 1), (k.TX_STOP, 0)):
        built_kind, frame = build(kind, arg)
        assert built_kind == kind
        out.append(frame)
    charger.tx, charger.tx_conn = 43 if not v201 else "t-2", 1
    out.append(build(k.TX_STOP, 1)[1])
    return out


@pytest.mark.parametrize("v201", [False, True], ids=["1.6", "2.0.1"])
def test_every_frame_is_valid_against_the_ocpp_schemas(v201: bool) -> None:
    version = "2.0.1" if v201 else "1.6"
    for message_type, uid, action, payload in _frames(v201):
        assert message_type == 2 and uid == "u1"
        _validate_payload(Call(uid, action, payload), version)


CSMS_CALLS_16: list[tuple[str, dict[str, Any]]] = [
    ("TriggerMessage", {"requestedMessage": "StatusNotification", "connectorId": 2}),
    ("TriggerMessage", {"requestedMessage": "MeterValues"}),
    ("Reset", {"type": "Soft"}),
    ("GetConfiguration", {}),
    ("GetConfiguration", {"key": ["HeartbeatInterval"]}),
    ("ChangeAvailability", {"connectorId": 0, "type": "Inoperative"}),
    ("UnlockConnector", {"connectorId": 1}),
    ("GetDiagnostics", {"location": "ftp://127.0.0.1/"}),
    ("GetLog", {"log": {"remoteLocation": "ftp://127.0.0.1/"}, "logType": "DiagnosticsLog",
                "requestId": 1}),
    ("ClearCache", {}),
    ("DataTransfer", {"vendorId": "X"}),
]
CSMS_CALLS_201: list[tuple[str, dict[str, Any]]] = [
    ("TriggerMessage", {"requestedMessage": "StatusNotification", "evse": {"id": 1}}),
    ("TriggerMessage", {"requestedMessage": "BootNotification"}),
    ("TriggerMessage", {"requestedMessage": "TransactionEvent"}),
    ("TriggerMessage", {"requestedMessage": "SignV2GCertificate"}),
    ("Reset", {"type": "Immediate"}),
    ("GetVariables", {"getVariableData": [
        {"component": {"name": "Connector", "evse": {"id": 1}}, "variable": {"name": "Enabled"}},
    ]}),
    ("GetBaseReport", {"requestId": 1, "reportBase": "ConfigurationInventory"}),
    ("ChangeAvailability", {"operationalStatus": "Inoperative"}),
    ("UnlockConnector", {"evseId": 1, "connectorId": 1}),
    ("GetLog", {"log": {"remoteLocation": "ftp://127.0.0.1/"}, "logType": "DiagnosticsLog",
                "requestId": 1}),
    ("ClearCache", {}),
    ("DataTransfer", {"vendorId": "X"}),
]


def test_answers_to_csms_calls_are_valid() -> None:
    for action, payload in CSMS_CALLS_16:
        _validate_payload(Call("c", action, payload), "1.6")
        reply = reply16(action, payload, connectors=2)
        assert reply.payload is not None, action
        _validate_payload(CallResult("c", json.loads(reply.payload), action), "1.6")
    for action, payload in CSMS_CALLS_201:
        _validate_payload(Call("c", action, payload), "2.0.1")
        reply = reply201(action, payload, connectors=2, booted=True, in_session=False)
        assert reply.payload is not None, action
        _validate_payload(CallResult("c", json.loads(reply.payload), action), "2.0.1")
    assert reply16("TriggerMessage", {"requestedMessage": "Heartbeat"},
                   connectors=2).trigger == (k.HEARTBEAT, 0)
    assert reply16("Reset", {"type": "Hard"}, connectors=2).reset
    assert reply16("TriggerMessage", {"requestedMessage": "StatusNotification",
                                      "connectorId": 3}, connectors=2).payload == (
        '{"status":"Rejected"}')
    assert reply201("SetChargingProfile", {}, connectors=1, booted=True,
                    in_session=False).error == "NotImplemented"
    assert reply16("RemoteStartTransaction", {"idTag": "X"}, connectors=1).error == (
        "NotImplemented")


# ---------------------------------------------------------------------- histogram


def test_histogram_percentiles_of_known_samples() -> None:
    hist = Histogram()
    assert hist.quantile(0.5) is None and hist.to_dict()["p99_s"] is None
    for us in range(1, 10_001):  # 1 µs .. 10 ms, uniform
        hist.record(us / 1_000_000)
    assert hist.count == 10_000
    for q, exact in ((0.5, 0.005), (0.9, 0.009), (0.99, 0.0099), (0.999, 0.00999)):
        value = hist.quantile(q)
        assert value is not None and abs(value - exact) / exact < 0.02, (q, value)
    assert hist.quantile(1.0) == pytest.approx(0.01)
    assert hist.to_dict()["min_s"] == pytest.approx(1e-6)
    assert hist.mean == pytest.approx(0.0050005)
    small = Histogram()
    for us in (3, 3, 7, 50):  # below 64 µs every microsecond is exact
        small.record(us / 1_000_000)
    assert small.quantile(0.5) == pytest.approx(3e-6)
    assert small.quantile(0.75) == pytest.approx(7e-6)
    assert small.quantile(1.0) == pytest.approx(50e-6)
    huge = Histogram()
    huge.record(7200.0)  # beyond the last bucket (1 h): counted, max exact
    assert huge.quantile(0.5) == pytest.approx(7200.0) and huge.count == 1


def test_histogram_merge_and_round_trip() -> None:
    a, b, both = Histogram(), Histogram(), Histogram()
    for n in range(1, 2001):
        value = n * 0.0007
        (a if n % 3 else b).record(value)
        both.record(value)
    merged = Histogram()
    merged.merge(a)
    merged.merge(b)
    assert merged.counts == both.counts and merged.count == both.count == 2000
    assert merged.min_us == both.min_us and merged.max_us == both.max_us
    for q in (0.5, 0.9, 0.99, 0.999):
        assert merged.quantile(q) == both.quantile(q)
    again = Histogram.from_dict(json.loads(json.dumps(merged.to_dict())))
    assert again.counts == merged.counts and again.sum_us == merged.sum_us
    assert again.quantile(0.99) == merged.quantile(0.99)


def test_histogram_buckets_are_contiguous_and_tight() -> None:
    previous = -1
    for us in (*range(0, 5000), *range(5000, 70_000_000, 9973), 3_599_999_999):
        index = bucket_of(us)
        low, high = bucket_bounds(index)
        assert low <= us < high
        assert index in (previous, previous + 1) or us >= 5000
        assert high - low <= max(1, low // 32 + 1)
        previous = index


def test_stats_combine_of_processes() -> None:
    one, two = Stats(10), Stats(5)
    one.calls_sent, two.calls_sent = 100, 50
    one.refused, two.refused = {"401": 1}, {"401": 2, "lost": 1}
    one.latency.record(0.001)
    two.latency.record(0.003)
    one.all_booted_after, two.all_booted_after = 1.0, 2.5
    one.sent_by_kind[k.HEARTBEAT], two.sent_by_kind[k.HEARTBEAT] = 3, 4
    total = Stats.combine([Stats.from_dict(one.to_dict()), Stats.from_dict(two.to_dict())])
    assert total.chargers == 15 and total.calls_sent == 150 and total.processes == 2
    assert total.refused == {"401": 3, "lost": 1}
    assert total.latency.count == 2 and total.all_booted_after == 2.5
    assert total.sent_by_action == {"Heartbeat": 7}
    two.all_booted_after = None
    assert Stats.combine([one, two]).all_booted_after is None


def test_config_split_and_mix() -> None:
    cfg = LoadConfig(url="ws://127.0.0.1:1/ocpp", count=10, mix=0.3, rate=100,
                     max_handshakes=10)
    assert sum(cfg.is_v201(n) for n in range(1, 11)) == 3
    parts = cfg.split(3)
    assert [p.count for p in parts] == [4, 3, 3] and [p.first for p in parts] == [1, 5, 8]
    assert sum(p.rate for p in parts) == pytest.approx(100)
    ids = [p.charger_id(n) for p in parts for n in range(p.first, p.first + p.count)]
    assert ids == [cfg.charger_id(n) for n in range(1, 11)] and ids[0] == "LOAD-001"
    with pytest.raises(ValueError, match="mix"):
        LoadConfig(url="ws://127.0.0.1:1/ocpp", mix=1.5)
    with pytest.raises(ValueError, match="ws:// or wss://"):
        LoadConfig(url="http://127.0.0.1:1/ocpp")
    assert LoadConfig(url="wss://127.0.0.1:1/ocpp").tls
