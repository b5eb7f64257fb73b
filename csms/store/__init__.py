"""Persistence of the CSMS: the database, its tables and the store that records events.

Typical use::

    db = Database("sqlite+aiosqlite:///data/csms.db")  # or postgresql+asyncpg://...
    await db.upgrade()
    store = Store(db, node=settings.node_id)
    await store.mark_all_disconnected(settings.node_id)
    await store.record(event)
    ...
    await db.dispose()
"""

from csms.store.database import Database, alembic_config, head_revision, upgrade
from csms.store.models import (
    STATION_ID_MAX_LENGTH,
    Base,
    ConnectionLogEntry,
    Connector,
    EngineStateRecord,
    MeterReading,
    Station,
    StationEventRecord,
    StatusHistory,
    TicketRecord,
    Transaction,
)
from csms.store.repository import Store, event_detail

__all__ = [
    "STATION_ID_MAX_LENGTH",
    "Base",
    "ConnectionLogEntry",
    "Connector",
    "Database",
    "EngineStateRecord",
    "MeterReading",
    "Station",
    "StationEventRecord",
    "StatusHistory",
    "Store",
    "TicketRecord",
    "Transaction",
    "alembic_config",
    "event_detail",
    "head_revision",
    "upgrade",
]
