"""A tiny central system built with the ``ocpp`` library, to test the simulators against.

It accepts ``ocpp1.6`` and ``ocpp2.0.1`` on ``ws://127.0.0.1:<port>/ocpp/<id>``, optionally checks
Basic auth, records every frame per charger, and lets tests send commands with :func:`ask`.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import unquote

import pytest
from ocpp.exceptions import OCPPError
from ocpp.routing import on as _on
from ocpp.v16 import ChargePoint as CP16Base
from ocpp.v16 import call_result as r16
from ocpp.v201 import ChargePoint as CP201Base
from ocpp.v201 import call_result as r201
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from simulators.base import StationBase
from simulators.station16 import Station16
from simulators.station201 import Station201

F = TypeVar("F", bound=Callable[..., Any])


def on(action: str) -> Callable[[F], F]:
    """Typed wrapper of ``ocpp.routing.on`` (the library ships no types)."""
    return cast(Callable[[F], F], _on(action))


def now() -> str:
    return datetime.now(UTC).isoformat()


class Recorder:
    """Mixin: records raw frames of one charger connection."""

    csms: MiniCsms
    id: str
    raw: dict[str, list[Any]]

    def _init_recorder(self, csms: MiniCsms) -> None:
        self.csms = csms
        self.raw = {}
        self.untracked: set[str] = set()

    @property
    def inbox(self) -> list[tuple[str, dict[str, Any]]]:
        """Every CALL from this charger id, across reconnects."""
        return self.csms.inboxes.setdefault(self.id, [])

    @property
    def events(self) -> list[str]:
        """Arrival order of CALLs ("call:<Action>") and answers ("result"/"error")."""
        return self.csms.events.setdefault(self.id, [])

    async def route_message(self, raw_msg: str) -> None:
        msg = json.loads(raw_msg)
        if msg[0] == 2:
            self.inbox.append((msg[2], msg[3]))
            self.events.append(f"call:{msg[2]}")
        else:
            self.raw[msg[1]] = msg
            self.events.append(f"{'result' if msg[0] == 3 else 'error'}:{msg[1]}")
        self.csms.wake()
        if msg[0] != 2 and msg[1] in self.untracked:
            return  # answer to ask_raw(): not for the library's call()
        await super().route_message(raw_msg)  # type: ignore[misc]

    def actions(self) -> list[str]:
        return [a for a, _ in self.inbox]

    def payloads(self, action: str) -> list[dict[str, Any]]:
        return [p for a, p in self.inbox if a == action]


class CP16(Recorder, CP16Base):  # type: ignore[misc]
    """1.6 side of the mini CSMS."""

    @on("BootNotification")
    def on_boot(self, **_: Any) -> Any:
        return r16.BootNotification(now(), self.csms.interval, self.csms.next_boot_status())

    @on("Heartbeat")
    def on_heartbeat(self, **_: Any) -> Any:
        return r16.Heartbeat(now())

    @on("StatusNotification")
    def on_status(self, **_: Any) -> Any:
        return r16.StatusNotification()

    @on("Authorize")
    def on_authorize(self, id_tag: str, **_: Any) -> Any:
        return r16.Authorize({"status": self.csms.token_status(id_tag)})

    @on("StartTransaction")
    def on_start(self, id_tag: str, **_: Any) -> Any:
        info = {"status": self.csms.token_status(id_tag)}
        return r16.StartTransaction(next(self.csms.tx_ids), info)

    @on("StopTransaction")
    def on_stop(self, **_: Any) -> Any:
        return r16.StopTransaction()

    @on("MeterValues")
    def on_meter(self, **_: Any) -> Any:
        return r16.MeterValues()

    @on("DiagnosticsStatusNotification")
    def on_diag(self, **_: Any) -> Any:
        return r16.DiagnosticsStatusNotification()

    @on("FirmwareStatusNotification")
    def on_fw(self, **_: Any) -> Any:
        return r16.FirmwareStatusNotification()

    @on("LogStatusNotification")
    def on_log(self, **_: Any) -> Any:
        return r16.LogStatusNotification()

    @on("DataTransfer")
    def on_data_transfer(self, **_: Any) -> Any:
        return r16.DataTransfer(status="Accepted")


class CP201(Recorder, CP201Base):  # type: ignore[misc]
    """2.0.1 side of the mini CSMS."""

    @on("BootNotification")
    def on_boot(self, **_: Any) -> Any:
        return r201.BootNotification(now(), self.csms.interval, self.csms.next_boot_status())

    @on("Heartbeat")
    def on_heartbeat(self, **_: Any) -> Any:
        return r201.Heartbeat(now())

    @on("StatusNotification")
    def on_status(self, **_: Any) -> Any:
        return r201.StatusNotification()

    @on("Authorize")
    def on_authorize(self, id_token: dict[str, Any], **_: Any) -> Any:
        return r201.Authorize({"status": self.csms.token_status(id_token["id_token"])})

    @on("TransactionEvent")
    def on_tx(self, id_token: dict[str, Any] | None = None, **_: Any) -> Any:
        if id_token is None:
            return r201.TransactionEvent()
        return r201.TransactionEvent(
            id_token_info={"status": self.csms.token_status(id_token["id_token"])}
        )

    @on("MeterValues")
    def on_meter(self, **_: Any) -> Any:
        return r201.MeterValues()

    @on("NotifyEvent")
    def on_event(self, **_: Any) -> Any:
        return r201.NotifyEvent()

    @on("NotifyReport")
    def on_report(self, **_: Any) -> Any:
        return r201.NotifyReport()

    @on("LogStatusNotification")
    def on_log(self, **_: Any) -> Any:
        return r201.LogStatusNotification()

    @on("FirmwareStatusNotification")
    def on_fw(self, **_: Any) -> Any:
        return r201.FirmwareStatusNotification()


@dataclass
class Connection:
    station_id: str
    subprotocol: str | None
    authorization: str | None


@dataclass
class MiniCsms:
    """Test central system; ``url`` is the endpoint base (``ws://127.0.0.1:<port>/ocpp``)."""

    interval: int = 300
    boot_statuses: list[str] = field(default_factory=list)
    """Statuses answered to successive BootNotifications; Accepted once exhausted."""
    passwords: dict[str, str] | None = None
    invalid_tags: set[str] = field(default_factory=set)
    url: str = ""
    chargers: dict[str, CP16 | CP201] = field(default_factory=dict)
    inboxes: dict[str, list[tuple[str, dict[str, Any]]]] = field(default_factory=dict)
    events: dict[str, list[str]] = field(default_factory=dict)
    connections: list[Connection] = field(default_factory=list)
    tx_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def next_boot_status(self) -> str:
        return self.boot_statuses.pop(0) if self.boot_statuses else "Accepted"

    def token_status(self, token: str) -> str:
        return "Invalid" if token in self.invalid_tags else "Accepted"

    def wake(self) -> None:
        self._changed.set()

    async def wait(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until ``predicate()`` holds (re-checked whenever a frame arrives)."""
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    async def charger(self, station_id: str, timeout: float = 5.0) -> CP16 | CP201:
        await self.wait(lambda: station_id in self.chargers, timeout)
        return self.chargers[station_id]

    async def wait_action(
        self, station_id: str, action: str, count: int = 1, timeout: float = 5.0
    ) -> list[dict[str, Any]]:
        """Wait until ``count`` CALLs ``action`` arrived from the charger; return them all."""
        await self.wait(
            lambda: station_id in self.chargers
            and len(self.chargers[station_id].payloads(action)) >= count,
            timeout,
        )
        return self.chargers[station_id].payloads(action)

    # -------------------------------------------------------------- websocket server

    def _select(self, conn: ServerConnection, offered: Sequence[str]) -> str | None:
        for proto in offered:
            if proto in ("ocpp1.6", "ocpp2.0.1"):
                return proto
        return None

    def _check(self, conn: ServerConnection, request: Request) -> Response | None:
        if self.passwords is None:
            return None
        station_id = unquote(request.path.rsplit("/", 1)[-1])
        expected = self.passwords.get(station_id)
        if expected is None:
            return conn.respond(HTTPStatus.NOT_FOUND, "unknown charger\n")
        token = base64.b64encode(f"{station_id}:{expected}".encode()).decode()
        if request.headers.get("Authorization") != f"Basic {token}":
            return conn.respond(HTTPStatus.UNAUTHORIZED, "bad credentials\n")
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        headers: Headers = ws.request.headers
        station_id = unquote(ws.request.path.rsplit("/", 1)[-1])
        self.connections.append(
            Connection(station_id, ws.subprotocol, headers.get("Authorization"))
        )
        self.wake()
        if ws.subprotocol is None:
            await ws.close(1002, "no subprotocol")
            return
        cp: CP16 | CP201 = (CP16 if ws.subprotocol == "ocpp1.6" else CP201)(
            station_id, ws, response_timeout=3
        )
        cp._init_recorder(self)
        self.chargers[station_id] = cp
        self.wake()
        try:
            await cp.start()
        except ConnectionClosed:
            pass
        finally:
            self.wake()

    async def serve(self) -> Server:
        server = await serve(
            self._handler,
            "127.0.0.1",
            0,
            subprotocols=["ocpp1.6", "ocpp2.0.1"],  # type: ignore[list-item]
            select_subprotocol=self._select,  # type: ignore[arg-type]
            process_request=self._check,
            compression=None,
        )
        port = next(iter(server.sockets)).getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/ocpp"
        return server


@dataclass
class Answer:
    """Outcome of a CSMS command: CALLRESULT payload, CALLERROR code, or timeout."""

    kind: str
    payload: dict[str, Any] | None = None
    code: str | None = None


async def ask(cp: CP16 | CP201, payload: Any, timeout: float = 3.0) -> Answer:
    """Send a command from the CSMS; return the raw camelCase answer."""
    uid = str(uuid.uuid4())
    cp._response_timeout = timeout
    try:
        await cp.call(payload, suppress=False, unique_id=uid)
    except OCPPError:
        pass
    except TimeoutError:
        return Answer("timeout")
    frame = cp.raw[uid]
    if frame[0] == 4:
        return Answer("error", code=frame[2])
    return Answer("result", payload=frame[2])


async def ask_raw(
    cp: CP16 | CP201, action: str, payload: dict[str, Any], timeout: float = 3.0
) -> Answer:
    """Send a raw CALL (camelCase payload, no validation) and return the answer."""
    uid = str(uuid.uuid4())
    cp.untracked.add(uid)
    await cp._send(json.dumps([2, uid, action, payload]))
    try:
        await cp.csms.wait(lambda: uid in cp.raw, timeout)
    except TimeoutError:
        return Answer("timeout")
    frame = cp.raw[uid]
    if frame[0] == 4:
        return Answer("error", code=frame[2])
    return Answer("result", payload=frame[2])


@pytest.fixture
async def csms() -> AsyncIterator[MiniCsms]:
    mini = MiniCsms()
    server = await mini.serve()
    try:
        yield mini
    finally:
        server.close()
        async with asyncio.timeout(5):
            await server.wait_closed()


StationFactory = Callable[..., StationBase]


@pytest.fixture
async def make_station(csms: MiniCsms) -> AsyncIterator[StationFactory]:
    """Build stations pointed at the mini CSMS (fast reconnect); stopped at teardown."""
    made: list[StationBase] = []

    def factory(protocol: str, station_id: str = "CP1", **kwargs: Any) -> StationBase:
        kwargs.setdefault("reconnect_delay", 0.05)
        kwargs.setdefault("response_timeout", 3.0)
        cls = Station16 if protocol == "1.6" else Station201
        station = cls(station_id, kwargs.pop("url", csms.url), **kwargs)
        made.append(station)
        return station

    try:
        yield factory
    finally:
        for station in made:
            async with asyncio.timeout(5):
                await station.stop()


# ---------------------------------------------------------------------- observing a charger


async def eventually(predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    """Poll ``predicate`` every 10 ms until it holds (TimeoutError after ``timeout``)."""
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110 - state changes without a signal to wait on
            await asyncio.sleep(0.01)


@dataclass(frozen=True)
class Status:
    """A StatusNotification, version-neutral (2.0.1 has no error code: None)."""

    connector: int
    status: str
    error_code: str | None = None
    vendor_code: str | None = None


def statuses(csms: MiniCsms, station_id: str = "CP1") -> list[Status]:
    """Every StatusNotification from the charger, across reconnects."""
    out = []
    for action, p in csms.inboxes.get(station_id, []):
        if action != "StatusNotification":
            continue
        if "connectorStatus" in p:
            out.append(Status(p["evseId"], p["connectorStatus"]))
        else:
            out.append(Status(p["connectorId"], p["status"], p["errorCode"],
                              p.get("vendorErrorCode")))
    return out


def last_status(csms: MiniCsms, connector: int = 1, station_id: str = "CP1") -> Status | None:
    """Last status reported for ``connector``."""
    found = [s for s in statuses(csms, station_id) if s.connector == connector]
    return found[-1] if found else None


@dataclass(frozen=True)
class Event:
    """One NotifyEvent eventData item."""

    component: str
    variable: str
    tech_code: str | None
    cleared: bool | None
    evse: int | None


def notify_events(csms: MiniCsms, station_id: str = "CP1") -> list[Event]:
    """Every NotifyEvent eventData item from the charger, across reconnects."""
    return [
        Event(d["component"]["name"], d["variable"]["name"], d.get("techCode"),
              d.get("cleared"), d["component"].get("evse", {}).get("id"))
        for action, p in csms.inboxes.get(station_id, [])
        if action == "NotifyEvent"
        for d in p["eventData"]
    ]


def actions(csms: MiniCsms, station_id: str = "CP1") -> list[str]:
    """Actions of every CALL from the charger, across reconnects."""
    return [a for a, _ in csms.inboxes.get(station_id, [])]


# ---------------------------------------------------------------------- commands per version


def reset_payload(protocol: str, hard: bool) -> dict[str, Any]:
    if protocol == "1.6":
        return {"type": "Hard" if hard else "Soft"}
    return {"type": "Immediate" if hard else "OnIdle"}


def unlock_payload(protocol: str, connector: int = 1) -> dict[str, Any]:
    if protocol == "1.6":
        return {"connectorId": connector}
    return {"evseId": connector, "connectorId": 1}


def availability_payload(protocol: str, connector: int, operative: bool) -> dict[str, Any]:
    kind = "Operative" if operative else "Inoperative"
    if protocol == "1.6":
        return {"connectorId": connector, "type": kind}
    if connector == 0:
        return {"operationalStatus": kind}
    return {"operationalStatus": kind, "evse": {"id": connector}}


def log_request(protocol: str, location: str, request_id: int = 7) -> tuple[str, dict[str, Any]]:
    """(action, payload) pulling the diagnostics log: 1.6 GetDiagnostics, 2.0.1 GetLog."""
    if protocol == "1.6":
        return "GetDiagnostics", {"location": location}
    return "GetLog", {"logType": "DiagnosticsLog", "requestId": request_id,
                      "log": {"remoteLocation": location}}


def log_statuses(csms: MiniCsms, protocol: str, station_id: str = "CP1") -> list[str]:
    """Statuses of DiagnosticsStatusNotification (1.6) / LogStatusNotification (2.0.1)."""
    action = "DiagnosticsStatusNotification" if protocol == "1.6" else "LogStatusNotification"
    return [p["status"] for a, p in csms.inboxes.get(station_id, []) if a == action]


# ---------------------------------------------------------------------- upload receivers


class UploadServer:
    """Minimal HTTP server on 127.0.0.1 storing PUT bodies."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.received: list[tuple[str, str, bytes]] = []
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = (await reader.readline()).decode().split()
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        body = await reader.readexactly(length)
        self.received.append((request[0], request[1], body))
        writer.write(f"HTTP/1.1 {self.status} X\r\nContent-Length: 0\r\n\r\n".encode())
        await writer.drain()
        writer.close()
        await writer.wait_closed()


@pytest.fixture
async def upload_server(request: pytest.FixtureRequest) -> AsyncIterator[UploadServer]:
    srv = UploadServer(getattr(request, "param", 201))
    server = await asyncio.start_server(srv.handle, "127.0.0.1", 0)
    srv.port = server.sockets[0].getsockname()[1]
    async with server:
        yield srv


@dataclass
class FtpReceiver:
    """aioftp server on 127.0.0.1; user ``sim``/``secret`` writes under ``root``."""

    root: Path
    port: int = 0

    def url(self, path: str = "/logs/") -> str:
        return f"ftp://sim:secret@127.0.0.1:{self.port}{path}"

    def files(self) -> dict[str, bytes]:
        return {str(p.relative_to(self.root)): p.read_bytes()
                for p in self.root.rglob("*") if p.is_file()}


@pytest.fixture
async def ftp_server(tmp_path: Path) -> AsyncIterator[FtpReceiver]:
    import aioftp

    root = tmp_path / "ftp"
    (root / "logs").mkdir(parents=True)
    user = aioftp.User("sim", "secret", base_path=root, home_path="/",
                       permissions=[aioftp.Permission("/", readable=True, writable=True)])
    server = aioftp.Server([user], path_io_factory=aioftp.PathIO)
    await server.start("127.0.0.1", 0)
    receiver = FtpReceiver(root, server.server.sockets[0].getsockname()[1])
    try:
        yield receiver
    finally:
        await server.close()
