"""Leases and node liveness for several CSMS nodes on one database.

A lease is taken with one conditional write: it is free, expired, or already ours; the row's
holder then says who won, so two nodes racing never both hold it. Times come from the nodes'
clocks (keep them in sync with NTP; the lease outlives any sane skew).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, or_, select, update

from csms.store.base import StoreBase, utc_now
from csms.store.models import ClusterLease, ClusterNode, ConnectionLogEntry, Station
from csms.store.types import as_utc


class ClusterQueries(StoreBase):
    """Acquire, renew and release leases; node heartbeats; where a station is connected."""

    async def acquire_lease(
        self, name: str, holder: str, now: datetime, ttl: timedelta
    ) -> bool:
        """Take or renew ``name`` for ``holder`` until ``now + ttl``; True if held now."""
        now = as_utc(now)
        expires = now + ttl
        async with self.db.write_session() as session:
            stmt = self._insert(ClusterLease).values(
                name=name, holder=holder, acquired_at=now, expires_at=expires)
            await session.execute(stmt.on_conflict_do_nothing(index_elements=["name"]))
            await session.execute(
                update(ClusterLease)
                .where(ClusterLease.name == name,
                       or_(ClusterLease.holder == holder, ClusterLease.expires_at < now))
                .values(holder=holder, expires_at=expires)
                .execution_options(synchronize_session=False)
            )
            current = await session.scalar(
                select(ClusterLease.holder).where(ClusterLease.name == name))
        return current == holder

    async def release_lease(self, name: str, holder: str) -> None:
        """Give ``name`` up (if ``holder`` has it), so another node takes over at once."""
        async with self.db.write_session() as session:
            await session.execute(
                delete(ClusterLease).where(ClusterLease.name == name,
                                           ClusterLease.holder == holder)
            )

    async def lease_holder(self, name: str, now: datetime) -> str | None:
        """Who holds ``name`` now (``None`` when free or expired)."""
        async with self.db.read_session() as session:
            row = await session.get(ClusterLease, name)
        if row is None or as_utc(row.expires_at) < as_utc(now):
            return None
        return row.holder

    async def holds_lease(self, name: str, holder: str, now: datetime) -> bool:
        """Whether ``holder`` holds ``name`` at ``now`` (the fence of a leader's writes)."""
        return await self.lease_holder(name, now) == holder

    async def node_alive(self, node: str, now: datetime, info: dict[str, Any]) -> None:
        """Record that ``node`` is alive at ``now``."""
        now = as_utc(now)
        async with self.db.write_session() as session:
            stmt = self._insert(ClusterNode).values(node=node, started_at=now, seen_at=now,
                                                    info=info)
            await session.execute(stmt.on_conflict_do_update(
                index_elements=["node"], set_={"seen_at": now, "info": stmt.excluded.info}))

    async def live_nodes(self, now: datetime, within: timedelta) -> list[ClusterNode]:
        """Nodes seen since ``now - within``."""
        cutoff = as_utc(now) - within
        async with self.db.read_session() as session:
            query = select(ClusterNode).where(ClusterNode.seen_at >= cutoff)
            return list((await session.scalars(query.order_by(ClusterNode.node))).all())

    async def dead_nodes(self, now: datetime, within: timedelta) -> list[str]:
        """Nodes not seen since ``now - within`` that still hold connected stations."""
        cutoff = as_utc(now) - within
        async with self.db.read_session() as session:
            query = (
                select(Station.connected_node).distinct()
                .where(Station.connected.is_(True), Station.connected_node.is_not(None))
            )
            holders = {n for n in (await session.scalars(query)).all() if n}
            alive = set((await session.scalars(
                select(ClusterNode.node).where(ClusterNode.seen_at >= cutoff))).all())
        return sorted(holders - alive)

    async def station_node(self, station_id: str) -> str | None:
        """The node holding the station's websocket, ``None`` when not connected."""
        async with self.db.read_session() as session:
            row = (await session.execute(
                select(Station.connected, Station.connected_node).where(Station.id == station_id)
            )).one_or_none()
        if row is None or not row[0]:
            return None
        return row[1]

    async def disconnect_node(self, node: str, reason: str) -> list[str]:
        """Mark the stations held by a dead ``node`` disconnected; return their ids."""
        now = utc_now()
        async with self.db.write_session() as session:
            ids = list((await session.execute(
                update(Station)
                .where(Station.connected.is_(True), Station.connected_node == node)
                .values(connected=False, connected_node=None, updated_at=now)
                .returning(Station.id)
                .execution_options(synchronize_session=False)
            )).scalars().all())
            if ids:
                await session.execute(insert(ConnectionLogEntry), [
                    {"station_id": sid, "at": now, "kind": "disconnected", "detail": reason}
                    for sid in ids
                ])
        return ids
