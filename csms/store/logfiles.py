"""Diagnostics logs chargers uploaded: an index of the files kept under the upload folder."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update

from csms.store.base import StoreBase
from csms.store.models import LogFileRecord
from csms.store.types import as_utc


class LogFileQueries(StoreBase):
    """One row per stored upload, with the signatures found in it once analysed."""

    async def save_log_file(
        self,
        *,
        station_id: str,
        request_id: int,
        protocol: str,
        path: str,
        filename_as_sent: str | None,
        size: int,
        sha256: str,
        received_at: datetime,
    ) -> int:
        """Index one stored upload; returns its id."""
        async with self.db.write_session() as session:
            result = await session.execute(
                insert(LogFileRecord).values(
                    station_id=station_id, request_id=request_id, protocol=protocol,
                    path=path, filename_as_sent=filename_as_sent, size=size, sha256=sha256,
                    received_at=as_utc(received_at), findings={"items": []},
                ).returning(LogFileRecord.id)
            )
            return int(result.scalar_one())

    async def set_log_findings(self, log_id: int, findings: list[dict[str, Any]]) -> None:
        """Record what the signature matcher found in a log."""
        async with self.db.write_session() as session:
            await session.execute(
                update(LogFileRecord).where(LogFileRecord.id == log_id)
                .values(findings={"items": findings})
            )

    async def log_files(
        self, station_id: str | None = None, *, limit: int = 100, offset: int = 0
    ) -> list[LogFileRecord]:
        """Stored logs, newest first."""
        query = select(LogFileRecord)
        if station_id is not None:
            query = query.where(LogFileRecord.station_id == station_id)
        query = query.order_by(LogFileRecord.received_at.desc(), LogFileRecord.id.desc())
        async with self.db.read_session() as session:
            return list((await session.scalars(query.limit(limit).offset(offset))).all())

    async def get_log_file(self, log_id: int) -> LogFileRecord | None:
        """One stored log, ``None`` when unknown."""
        async with self.db.read_session() as session:
            return await session.get(LogFileRecord, log_id)

    async def count_log_files(self, station_id: str | None = None) -> int:
        """How many logs :meth:`log_files` would list without a limit."""
        query = select(func.count()).select_from(LogFileRecord)
        if station_id is not None:
            query = query.where(LogFileRecord.station_id == station_id)
        async with self.db.read_session() as session:
            return int((await session.execute(query)).scalar_one())
