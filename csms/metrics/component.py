"""The metrics component: a per-central-system registry, ``GET /metrics`` and the refresh task.

Each central system gets its own :class:`~prometheus_client.CollectorRegistry` (several run
in one test process); nothing goes to the library's global registry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from fastapi import APIRouter, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Gauge,
    disable_created_metrics,
    generate_latest,
)

from csms.logs import get_logger
from csms.metrics.fleet import FleetGauges
from csms.metrics.limits import LIMITS_KEY
from csms.metrics.ocpp import OcppMeter
from csms.metrics.operations import OperationsMetrics
from csms.protocol.common import utc_now
from csms.tasks import cancel_and_wait

if TYPE_CHECKING:
    from csms.app import CentralSystem

log = get_logger("csms.metrics")

REFRESH_INTERVAL = 5.0
"""Seconds between two reads of the fleet gauges from the database."""


class MetricsComponent:
    """Owns the registry; refreshes the database-backed gauges every ``refresh_interval``."""

    def __init__(
        self,
        central: CentralSystem,
        *,
        refresh_interval: float = REFRESH_INTERVAL,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.refresh_interval = refresh_interval
        self._clock = clock
        self.ocpp = OcppMeter()
        self.registry.register(self.ocpp)
        self.limits = self.ocpp.limits
        self.registry.register(self.limits)
        registry = central.registry
        connected = Gauge(
            "csms_connected_chargers", "Chargers connected to this node (live websockets).",
            registry=self.registry,
        )
        connected.set_function(lambda: len(registry))
        self.operations = OperationsMetrics(self.registry)
        self.fleet = FleetGauges(self.registry, central.store)
        self._bus = central.bus
        self._unsubscribe: Callable[[], None] | None = None
        self._task: asyncio.Task[None] | None = None

    def subscribe(self) -> None:
        """Count the bus notices from now on."""
        if self._unsubscribe is None:
            self._unsubscribe = self._bus.subscribe(self.operations)

    async def refresh(self, now: datetime | None = None) -> None:
        """Read the fleet gauges from the database now (``now``: the time SLAs are judged at)."""
        await self.fleet.refresh(now or self._clock())

    def exposition(self) -> bytes:
        """The text exposition of every metric."""
        return generate_latest(self.registry)

    def router(self) -> APIRouter:
        """``GET /metrics`` (Prometheus text format, no authentication)."""
        router = APIRouter(tags=["metrics"])

        @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
        async def metrics() -> Response:
            return Response(self.exposition(), media_type=CONTENT_TYPE_LATEST)

        return router

    async def start(self) -> None:
        """Start the refresh task (its first refresh runs at once)."""
        self.subscribe()
        if self._task is None:
            self._task = asyncio.create_task(self._refresh_loop(), name="metrics-refresh")

    async def stop(self) -> None:
        """Stop refreshing and counting."""
        await self.stop_refreshing()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    async def stop_refreshing(self) -> None:
        """Stop the periodic refresh (tests then call :meth:`refresh` themselves)."""
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

    async def _refresh_loop(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:
                self.fleet.refresh_failures.inc()
                log.exception("metrics_refresh_failed")
            await asyncio.sleep(self.refresh_interval)


def install(central: CentralSystem) -> MetricsComponent:
    """Create the metrics of ``central``: hook the OCPP endpoint, subscribe to the bus, add
    ``GET /metrics`` to the HTTP routers; the component refreshes the fleet gauges."""
    # No ``*_created`` series beside every counter (process-wide switch of prometheus_client;
    # the text format does not need them and they double the series count).
    disable_created_metrics()  # type: ignore[no-untyped-call]
    component = MetricsComponent(central)
    central.ocpp.metrics = component.ocpp
    central.api.extras[LIMITS_KEY] = component.limits
    central.uploads.refusal_listeners.append(component.limits.upload_refused)
    component.subscribe()
    central.http_routers.append(component.router())
    return component

