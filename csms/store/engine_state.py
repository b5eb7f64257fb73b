"""The diagnostics engine's persisted state: a core row plus one shard row per station.

The runner writes a :class:`~diagnostics.state.StateDelta` before acting on what the engine
decided (write-ahead): the core, and the shards of the stations that changed. A fleet's
state is tens of megabytes (status timelines, tickets with their evidence), one batch's
change a few kilobytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select

from csms.store import postgres_bulk
from csms.store.base import StoreBase, utc_now
from csms.store.models import EngineStateRecord, EngineStateShardRecord
from diagnostics.state import StateDelta


@dataclass(frozen=True)
class StoredState:
    """What :meth:`EngineStateQueries.load_engine_state` read: give it to
    :func:`diagnostics.state.assemble_state`."""

    core: str
    shards: list[str]


class EngineStateQueries(StoreBase):
    """Load and save the engine state of one key (a node, or the cluster's leader)."""

    async def load_engine_state(self, key: str) -> StoredState | None:
        """The state saved under ``key``, if any."""
        async with self.db.read_session() as session:
            record = await session.get(EngineStateRecord, key)
            if record is None:
                return None
            shards = (await session.scalars(
                select(EngineStateShardRecord.data).where(EngineStateShardRecord.state_key == key)
            )).all()
            return StoredState(core=record.state, shards=list(shards))

    async def save_engine_state(self, key: str, delta: StateDelta) -> None:
        """Write ``delta`` in one transaction (called before the commands it decided are
        sent): the core, the changed shards, and no shard a full delta does not hold."""
        now = utc_now()
        async with self.db.write_session() as session:
            stmt = self._insert(EngineStateRecord).values(node=key, state=delta.core,
                                                          updated_at=now)
            await session.execute(stmt.on_conflict_do_update(
                index_elements=[EngineStateRecord.node],
                set_={"state": stmt.excluded.state, "updated_at": stmt.excluded.updated_at},
            ))
            shard_table = EngineStateShardRecord
            gone = [station_id for station_id, data in delta.shards.items() if data is None]
            if delta.full:
                await session.execute(delete(shard_table).where(shard_table.state_key == key))
            elif gone:
                await session.execute(delete(shard_table).where(
                    shard_table.state_key == key, shard_table.station_id.in_(gone)))
            rows = _rows(key, delta, now)
            if rows and self.db.dialect_name == "postgresql":
                await postgres_bulk.engine_shards(await session.connection(), rows)
            elif rows:
                upsert = self._insert(shard_table)
                await session.execute(
                    upsert.on_conflict_do_update(
                        index_elements=[shard_table.state_key, shard_table.station_id],
                        set_={"data": upsert.excluded.data,
                              "updated_at": upsert.excluded.updated_at},
                    ),
                    rows,
                )


def _rows(key: str, delta: StateDelta, now: datetime) -> list[dict[str, Any]]:
    return [
        {"state_key": key, "station_id": station_id, "data": data, "updated_at": now}
        for station_id, data in delta.shards.items() if data is not None
    ]
