"""Fleet gauges read from the database: every node's stations, open tickets, SLA breaches.

Each node exports the same values (read ``max()`` across instances, not ``sum()``).
``csms_sla_breaches_total{deadline}`` counts each ticket's deadline once, when a refresh first
sees it missed (:func:`diagnostics.tickets.sla_breaches`).
"""

from __future__ import annotations

from collections import Counter as Tally
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge

from csms.metrics.labels import (
    CONNECTOR_STATUSES,
    PRIORITIES,
    SLA_DEADLINES,
    STATION_STATES,
    bounded,
)
from csms.store import Store
from csms.store.runs import ACTIVE_TICKET_STATUSES
from diagnostics.tickets import Ticket, sla_breaches

MAX_ACTIVE_TICKETS = 100_000
"""Upper bound of active tickets read per status and refresh."""


class FleetGauges:
    """Gauges refreshed from the store by :meth:`refresh`."""

    def __init__(self, registry: CollectorRegistry, store: Store) -> None:
        self.store = store
        self.stations = Gauge(
            "csms_stations", "Stations of the fleet by state (offline, faulted, in_use, "
            "unavailable, available).", ["state"], registry=registry,
        )
        self.connectors = Gauge(
            "csms_connectors", "Connector status rows of the fleet by status (OCPP 1.6 "
            "connector 0 is the station itself).", ["status"], registry=registry,
        )
        self.tickets_open = Gauge(
            "csms_tickets_open", "Active tickets (open, acknowledged, dispatched) by priority.",
            ["priority"], registry=registry,
        )
        self.runs_active = Gauge(
            "csms_diagnostics_runs_active", "Diagnostics runs in progress (all nodes).",
            registry=registry,
        )
        self.sla_breached = Gauge(
            "csms_tickets_sla_breached", "Active tickets past an SLA deadline, by deadline.",
            ["deadline"], registry=registry,
        )
        self.sla_breaches = Counter(
            "csms_sla_breaches_total", "SLA deadlines missed (once per ticket and deadline).",
            ["deadline"], registry=registry,
        )
        self.refreshed = Gauge(
            "csms_fleet_refresh_timestamp_seconds",
            "Unix time of the last successful refresh of the fleet gauges.", registry=registry,
        )
        self.refresh_failures = Counter(
            "csms_fleet_refresh_failures_total", "Refreshes of the fleet gauges that failed.",
            registry=registry,
        )
        for state in STATION_STATES:
            self.stations.labels(state).set(0)
        for status in CONNECTOR_STATUSES:
            self.connectors.labels(status).set(0)
        for priority in PRIORITIES:
            self.tickets_open.labels(priority).set(0)
        for deadline in SLA_DEADLINES:
            self.sla_breached.labels(deadline).set(0)
            self.sla_breaches.labels(deadline)
        self._seen_breaches: set[tuple[str, str]] = set()
        self._tickets: dict[str, tuple[datetime, Ticket]] = {}
        """Decoded active tickets by id, with the ``updated_at`` they were decoded at."""

    async def refresh(self, now: datetime) -> None:
        """Read the fleet summary and the active tickets; update the gauges."""
        summary = await self.store.fleet_summary()
        _set_all(self.stations, STATION_STATES, summary.station_states)
        connectors: Tally[str] = Tally()
        for status, count in summary.connector_states.items():
            connectors[bounded(status, CONNECTOR_STATUSES, fallback="Unknown")] += count
        _set_all(self.connectors, CONNECTOR_STATUSES, connectors)
        _set_all(self.tickets_open, PRIORITIES, summary.open_tickets)
        self.runs_active.set(summary.active_runs)
        await self._refresh_sla(now)
        self.refreshed.set(now.timestamp())

    async def _refresh_sla(self, now: datetime) -> None:
        active: dict[str, tuple[datetime, Ticket]] = {}
        for status in ACTIVE_TICKET_STATUSES:
            for record in await self.store.tickets(status=status, limit=MAX_ACTIVE_TICKETS):
                cached = self._tickets.get(record.ticket_id)
                if cached is None or cached[0] != record.updated_at:
                    cached = (record.updated_at, Ticket.from_dict(record.data))
                active[record.ticket_id] = cached
        self._tickets = active
        breached: Tally[str] = Tally()
        seen: set[tuple[str, str]] = set()
        for ticket_id, (_, ticket) in active.items():
            for deadline in sla_breaches(ticket, now):
                label = bounded(deadline, SLA_DEADLINES)
                breached[label] += 1
                key = (ticket_id, label)
                seen.add(key)
                if key not in self._seen_breaches:
                    self.sla_breaches.labels(label).inc()
        # Forget tickets that are no longer active (a reopened ticket may breach again).
        self._seen_breaches = seen | {
            key for key in self._seen_breaches if key[0] in active
        }
        _set_all(self.sla_breached, SLA_DEADLINES, breached)


def _set_all(gauge: Gauge, labels: tuple[str, ...], values: dict[str, int]) -> None:
    for label in labels:
        gauge.labels(label).set(values.get(label, 0))
