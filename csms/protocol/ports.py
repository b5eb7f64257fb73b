"""What the protocol adapters need from the rest of the CSMS, as a small interface.

Adapters translate frames; everything they learn goes to a :class:`StationBackend` as
version-neutral events, and is recorded before the station gets its CALLRESULT: an answered
message is a stored message.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from diagnostics.events import DomainEvent


class StationBackend(Protocol):
    """Receives every event of every connected station."""

    async def record(self, *events: DomainEvent) -> None:
        """Persist (and later react to) the events of one message, all or none; return once
        they are stored. A message whose events are not all stored gets a CALLERROR and
        leaves nothing behind, so the charger's retry stores nothing twice."""

    async def begin_local_transaction(
        self,
        *,
        station_id: str,
        at: datetime,
        connector_id: int | None,
        evse_id: int | None,
        id_token: str | None,
        meter_start_wh: float | None,
        started_at: datetime,
    ) -> int:
        """Open a transaction whose id the CSMS assigns (OCPP 1.6 StartTransaction.conf)."""
        ...
