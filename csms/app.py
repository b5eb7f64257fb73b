"""The central system as one object: settings in, a running OCPP endpoint and store out.

``CentralSystem`` wires the pieces (database, store, session registry, websocket server) and
owns their start and stop order. Tests start it in-process on port 0; ``csms serve`` runs it
until SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
from types import TracebackType

from csms.logs import get_logger
from csms.protocol.registry import SessionRegistry
from csms.server import OcppServer
from csms.settings import Settings
from csms.store import Database, Store
from diagnostics.commands import CommandOutcome, StationCommand

log = get_logger("csms.app")


class CentralSystem:
    """The CSMS process: start, serve, stop."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.database = Database(settings.database_url)
        self.store = Store(self.database, node=settings.node_id)
        self.registry = SessionRegistry()
        self.ocpp = OcppServer(
            settings.ocpp, self.store, self.registry, log_frames=settings.logging.frames
        )

    @property
    def ocpp_port(self) -> int:
        """The port chargers connect to (the bound one when configured as 0)."""
        return self.ocpp.port

    @property
    def ocpp_url(self) -> str:
        """The endpoint base URL on loopback, e.g. ``ws://127.0.0.1:9000/ocpp``."""
        return f"ws://127.0.0.1:{self.ocpp_port}{self.settings.ocpp.path_prefix}"

    async def start(self) -> None:
        """Migrate (if configured), reset stale connection flags, start listening."""
        if self.settings.database.auto_migrate:
            await self.database.upgrade()
        stale = await self.store.mark_all_disconnected(self.settings.node_id)
        if stale:
            log.info("stale_connections_cleared", stations=stale)
        await self.ocpp.start()

    async def stop(self) -> None:
        """Close charger connections, then the database."""
        await self.ocpp.stop()
        await self.database.dispose()

    async def execute(self, station_id: str, command: StationCommand) -> CommandOutcome:
        """Send a version-neutral command to a connected station."""
        return await self.registry.execute(station_id, command)

    async def __aenter__(self) -> CentralSystem:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def serve_forever(self) -> None:
        """Run until SIGINT or SIGTERM, then stop cleanly."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with self:
            await stop.wait()
            log.info("shutting_down")
