"""The central system as one object: settings in, a running OCPP endpoint and store out.

``CentralSystem`` wires the pieces (database, store, session registry, websocket server) and
owns their start and stop order. Tests start it in-process on port 0; ``csms serve`` runs it
until SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
from types import TracebackType

from fastapi import APIRouter

from csms import metrics, mqtt, webhook
from csms.api import stream
from csms.api.context import ApiContext
from csms.automation import DiagnosticsPort, DiagnosticsRunner, RecordingBackend
from csms.bus import EventBus
from csms.cluster.node import STATE_KEY as CLUSTER_STATE_KEY
from csms.cluster.node import ClusterNode
from csms.components import Component
from csms.http.app import create_app
from csms.http.server import HttpServer
from csms.logindex import LogIndexer
from csms.logs import get_logger
from csms.protocol.registry import SessionRegistry
from csms.runtime import freeze_startup_objects
from csms.security.limits import AddressLimit
from csms.security.tls import http_context
from csms.server import OcppServer
from csms.settings import Settings, resolve_path
from csms.store import Database, Store
from csms.uploads.config import UploadConfig
from csms.uploads.ftp import FtpUploadServer
from csms.uploads.service import Uploads, passive_address
from diagnostics import (
    DiagnosticsEngine,
    EngineState,
    Timings,
    load_playbooks,
    load_signatures,
    load_sla,
)
from diagnostics.commands import CommandOutcome, StationCommand

log = get_logger("csms.app")


class CentralSystem:
    """The CSMS process: start, serve, stop."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.database = Database(settings.database_url)
        self.store = Store(self.database, node=settings.node_id,
                           write_lanes=settings.database.write_lanes)
        self.registry = SessionRegistry()
        self._stopped = False
        self.bus = EventBus()
        """Operations events (status, faults, runs, tickets, reports, logs) to subscribers."""
        upload_config = UploadConfig(**settings.uploads.model_dump())
        self.uploads = Uploads.from_config(
            upload_config, settings.data_dir / "uploads", http_port=settings.http.port
        )
        self.diagnostics = self._diagnostics_runner() if settings.diagnostics.enabled else None
        """The diagnostics engine's pump (with several nodes it runs only on the leader)."""
        self.logs = LogIndexer(
            self.store, self.bus, self.uploads,
            load_signatures(resolve_path(settings.diagnostics.signatures))
            if settings.diagnostics.enabled else None,
        )
        if self.diagnostics is not None:
            self.logs.listeners.append(self.diagnostics.log_received)
        self.cluster = ClusterNode(self, self.diagnostics) if settings.cluster.enabled else None
        port: DiagnosticsPort | None = self.diagnostics
        if self.cluster is not None and self.diagnostics is not None:
            port = self.cluster
        self.backend = RecordingBackend(self.store, port, self.bus)
        self.ocpp = OcppServer(
            settings.ocpp, self.store, self.registry, backend=self.backend,
            log_frames=settings.logging.frames, limits=settings.limits,
        )
        self.api = ApiContext(
            settings=settings, store=self.store, bus=self.bus, execute=self.execute,
            registry=self.registry, runner=port, uploads=self.uploads,
        )
        self.http_routers: list[APIRouter] = []
        """Extra HTTP routers added by the components (``/metrics``)."""
        self.components: list[Component] = [
            component for install in (
                metrics.install, mqtt.install, webhook.install, stream.install,
            )
            if (component := install(self)) is not None
        ]
        self.http = HttpServer(
            create_app(uploads=self.uploads, context=self.api, routers=self.http_routers),
            host=settings.http.host, port=settings.http.port,
            reuse_port=settings.http.reuse_port, extra_port=settings.http.upload_port,
            ssl=http_context(settings.http),
        )
        self.ftp = (
            FtpUploadServer(
                self.uploads,
                host=upload_config.ftp_host,
                port=upload_config.ftp_port,
                passive_ports=upload_config.ftp_passive_ports,
                passive_address=passive_address(upload_config),
                rate_limit=AddressLimit(settings.limits.uploads_per_minute,
                                        settings.limits.exempt_networks),
            )
            if upload_config.ftp_enabled
            else None
        )

    def _diagnostics_runner(self) -> DiagnosticsRunner:
        config = self.settings.diagnostics
        playbooks = load_playbooks(resolve_path(config.playbooks))
        sla = load_sla(resolve_path(config.sla))
        timings = Timings().scaled(config.time_scale)
        uploads = self.uploads

        def location(station_id: str, request_id: int) -> str:
            return uploads.open(station_id, request_id).location(config.upload_protocol)

        def engine(state: EngineState | None) -> DiagnosticsEngine:
            return DiagnosticsEngine(playbooks, sla, timings, state, log_location=location)

        return DiagnosticsRunner(
            engine, self.store, self.execute, node=self.settings.node_id, bus=self.bus,
            state_key=CLUSTER_STATE_KEY if self.settings.cluster.enabled else None,
            guard=self._leads if self.settings.cluster.enabled else None,
        )

    async def _leads(self) -> bool:
        return self.cluster is not None and await self.cluster.guard()

    @property
    def ocpp_port(self) -> int:
        """The port chargers connect to (the bound one when configured as 0)."""
        return self.ocpp.port

    @property
    def ocpp_url(self) -> str:
        """The endpoint base URL on loopback, e.g. ``ws://127.0.0.1:9000/ocpp`` (``wss://``
        when ``ocpp.port`` serves TLS only, i.e. ``ocpp.tls_cert`` without ``ocpp.tls_port``)."""
        ocpp = self.settings.ocpp
        scheme = "wss" if ocpp.tls and ocpp.tls_port is None else "ws"
        return f"{scheme}://127.0.0.1:{self.ocpp_port}{ocpp.path_prefix}"

    async def start(self) -> None:
        """Migrate (if configured), reset stale connection flags, start listening.

        The HTTP and FTP upload endpoints start before the OCPP endpoint, so that every
        upload location handed to a charger is already served.
        """
        if self.settings.database.auto_migrate:
            await self.database.upgrade()
        stale = await self.store.mark_all_disconnected(self.settings.node_id)
        if stale:
            log.info("stale_connections_cleared", stations=stale)
        await asyncio.to_thread(self.uploads.storage.remove_partials)
        await self.http.start()
        self.uploads.registry.endpoints.http_port = self.http.extra_port or self.http.port
        self.uploads.registry.endpoints.http_scheme = "https" if self.http.ssl else "http"
        if self.ftp is not None:
            await self.ftp.start()
            self.uploads.registry.endpoints.ftp_port = self.ftp.port
        await self.logs.start()
        if self.cluster is not None:
            await self.cluster.start()
        elif self.diagnostics is not None:
            await self.diagnostics.start()
        for component in self.components:
            await component.start()
        await self.ocpp.start()
        scheme = "https" if self.settings.http.tls_cert is not None else "http"
        log.info("csms_ready", http=f"{scheme}://{self.settings.http.host}:{self.http.port}",
                 ftp_port=self.ftp.port if self.ftp else None)

    async def stop(self) -> None:
        """Close charger connections, the upload endpoints, then the database (once)."""
        if self._stopped:
            return
        self._stopped = True
        await self.ocpp.stop()
        if self.cluster is not None:
            await self.cluster.stop()
        elif self.diagnostics is not None:
            await self.diagnostics.stop()
        await self.logs.stop()
        for component in reversed(self.components):
            await component.stop()
        if self.ftp is not None:
            await self.ftp.stop()
        await self.http.stop()
        await self.uploads.registry.aclose()
        await self.database.dispose()

    async def execute(self, station_id: str, command: StationCommand) -> CommandOutcome:
        """Send a version-neutral command to a connected station (on any node)."""
        if self.cluster is not None:
            return await self.cluster.execute(station_id, command)
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
            freeze_startup_objects(self.settings.runtime)
            await stop.wait()
            log.info("shutting_down")
