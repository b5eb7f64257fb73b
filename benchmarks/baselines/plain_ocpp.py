"""The "plain library" baseline: what most Python central systems start from.

A websockets server with one ``ocpp`` library ``ChargePoint`` per connection (``ocpp.v16`` or
``ocpp.v201`` by the negotiated subprotocol) and ``@on`` handlers for the messages of the
load generator's realistic mix, all with the library's defaults (JSON schema validation of
every request and response on, one message at a time per connection) and no database: the
answers are made up in memory. 1.6: BootNotification, Heartbeat, StatusNotification,
StartTransaction, StopTransaction, MeterValues, Authorize. 2.0.1: BootNotification,
Heartbeat, StatusNotification, TransactionEvent, MeterValues, Authorize.

Run: ``python benchmarks/baselines/plain_ocpp.py --port 9200`` (Ctrl-C or SIGTERM stops it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import resource
import signal
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from ocpp.routing import on as library_on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import AuthorizationStatus, RegistrationStatus
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import AuthorizationStatusEnumType, RegistrationStatusEnumType
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

SUBPROTOCOLS = [Subprotocol("ocpp1.6"), Subprotocol("ocpp2.0.1")]
HEARTBEAT_INTERVAL = 300
_transaction_ids = itertools.count(1)
Handler = TypeVar("Handler", bound=Callable[..., Any])


def on(action: str) -> Callable[[Handler], Handler]:
    """The library's ``@on(action)`` (schema validation on, as by default), typed."""
    decorator: Callable[[Handler], Handler] = library_on(action)
    return decorator


def now() -> str:
    """The current UTC time, ISO 8601."""
    return datetime.now(UTC).isoformat()


class Station16(ChargePoint16):  # type: ignore[misc]  # the library is untyped
    """An OCPP 1.6J charger as the library's examples handle it."""

    @on("BootNotification")
    async def on_boot(self, charge_point_vendor: str, charge_point_model: str,
                      **_: Any) -> Any:
        return result16.BootNotification(current_time=now(), interval=HEARTBEAT_INTERVAL,
                                         status=RegistrationStatus.accepted)

    @on("Heartbeat")
    async def on_heartbeat(self) -> Any:
        return result16.Heartbeat(current_time=now())

    @on("StatusNotification")
    async def on_status(self, connector_id: int, error_code: str, status: str,
                        **_: Any) -> Any:
        return result16.StatusNotification()

    @on("Authorize")
    async def on_authorize(self, id_tag: str) -> Any:
        return result16.Authorize(id_tag_info={"status": AuthorizationStatus.accepted})

    @on("StartTransaction")
    async def on_start(self, connector_id: int, id_tag: str, meter_start: int,
                       timestamp: str, **_: Any) -> Any:
        return result16.StartTransaction(transaction_id=next(_transaction_ids),
                                         id_tag_info={"status": AuthorizationStatus.accepted})

    @on("StopTransaction")
    async def on_stop(self, meter_stop: int, timestamp: str, transaction_id: int,
                      **_: Any) -> Any:
        return result16.StopTransaction()

    @on("MeterValues")
    async def on_meter_values(self, connector_id: int, meter_value: list[Any],
                              **_: Any) -> Any:
        return result16.MeterValues()


class Station201(ChargePoint201):  # type: ignore[misc]  # the library is untyped
    """An OCPP 2.0.1 charger as the library's examples handle it."""

    @on("BootNotification")
    async def on_boot(self, charging_station: dict[str, Any], reason: str, **_: Any) -> Any:
        return result201.BootNotification(current_time=now(), interval=HEARTBEAT_INTERVAL,
                                          status=RegistrationStatusEnumType.accepted)

    @on("Heartbeat")
    async def on_heartbeat(self) -> Any:
        return result201.Heartbeat(current_time=now())

    @on("StatusNotification")
    async def on_status(self, timestamp: str, connector_status: str, evse_id: int,
                        connector_id: int, **_: Any) -> Any:
        return result201.StatusNotification()

    @on("Authorize")
    async def on_authorize(self, id_token: dict[str, Any], **_: Any) -> Any:
        return result201.Authorize(
            id_token_info={"status": AuthorizationStatusEnumType.accepted})

    @on("TransactionEvent")
    async def on_transaction_event(self, event_type: str, timestamp: str,
                                   trigger_reason: str, seq_no: int,
                                   transaction_info: dict[str, Any], **kwargs: Any) -> Any:
        if "id_token" in kwargs:
            return result201.TransactionEvent(
                id_token_info={"status": AuthorizationStatusEnumType.accepted})
        return result201.TransactionEvent()

    @on("MeterValues")
    async def on_meter_values(self, evse_id: int, meter_value: list[Any], **_: Any) -> Any:
        return result201.MeterValues()


async def handle(connection: ServerConnection) -> None:
    """One charger: ``ws://host:port/<anything>/<id>``, protocol by subprotocol."""
    path = connection.request.path if connection.request is not None else "/"
    station_id = path.rstrip("/").rsplit("/", 1)[-1] or "unknown"
    station_class = Station201 if connection.subprotocol == "ocpp2.0.1" else Station16
    station = station_class(station_id, connection)
    with contextlib.suppress(ConnectionClosed):
        await station.start()


def raise_fd_limit() -> None:
    """Soft open-files limit up to the hard one (one socket per charger)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def serve_until_stopped(host: str, port: int) -> None:
    """Serve until SIGINT/SIGTERM."""
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set_result, None)
    async with serve(handle, host, port, subprotocols=SUBPROTOCOLS, backlog=4096):
        print(f"plain ocpp library server on ws://{host}:{port}", flush=True)
        await stop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9200)
    args = parser.parse_args(argv)
    raise_fd_limit()
    asyncio.run(serve_until_stopped(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
