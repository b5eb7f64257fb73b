"""Driver fault reports: the intake writes one row, the status follower moves it along.

Only the SHA-256 of a report's tracking token is kept (``tracking_hash``): the token itself is
shown once, to the driver who filed the report.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, insert, select, update

from csms.store.base import StoreBase
from csms.store.models import DriverReportRecord
from csms.store.types import as_utc


def _report_filters(
    station_id: str | None, status: str | None
) -> list[ColumnElement[bool]]:
    filters: list[ColumnElement[bool]] = []
    if station_id is not None:
        filters.append(DriverReportRecord.station_id == station_id)
    if status is not None:
        filters.append(DriverReportRecord.status == status)
    return filters


class ReportQueries(StoreBase):
    """Driver reports: create, find by tracking token hash, follow the diagnosis."""

    async def create_report(
        self,
        *,
        report_id: str,
        station_id: str,
        connector: int | None,
        category: str,
        text: str,
        contact: str | None,
        tracking_hash: str,
        status: str,
        photos: list[dict[str, Any]],
        history: list[dict[str, Any]],
        client_address: str | None,
        created_at: datetime,
    ) -> DriverReportRecord:
        """Store a new report; returns it as stored."""
        at = as_utc(created_at)
        async with self.db.write_session() as session:
            await session.execute(insert(DriverReportRecord).values(
                report_id=report_id, station_id=station_id, connector=connector,
                category=category, text=text, contact=contact, tracking_hash=tracking_hash,
                status=status, run_id=None, ticket_id=None, photos={"items": photos},
                history={"items": history, "refiled": 0}, client_address=client_address,
                created_at=at, updated_at=at,
            ))
        report = await self.get_report(report_id)
        assert report is not None
        return report

    async def get_report(self, report_id: str) -> DriverReportRecord | None:
        """One report, ``None`` when unknown."""
        async with self.db.read_session() as session:
            return await session.get(DriverReportRecord, report_id)

    async def report_by_tracking_hash(self, tracking_hash: str) -> DriverReportRecord | None:
        """The report whose tracking token hashes to ``tracking_hash``."""
        query = select(DriverReportRecord).where(
            DriverReportRecord.tracking_hash == tracking_hash)
        async with self.db.read_session() as session:
            return (await session.scalars(query)).first()

    async def reports(
        self,
        station_id: str | None = None,
        *,
        status: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[DriverReportRecord]:
        """Reports, newest first."""
        query = (
            select(DriverReportRecord)
            .where(*_report_filters(station_id, status))
            .order_by(DriverReportRecord.created_at.desc(), DriverReportRecord.report_id)
            .limit(limit).offset(offset)
        )
        async with self.db.read_session() as session:
            return list((await session.scalars(query)).all())

    async def count_reports(
        self, station_id: str | None = None, *, status: str | None = None
    ) -> int:
        """How many reports :meth:`reports` would list without a limit."""
        query = select(func.count()).select_from(DriverReportRecord).where(
            *_report_filters(station_id, status))
        async with self.db.read_session() as session:
            return int((await session.execute(query)).scalar_one())

    async def reports_by_ids(
        self, report_ids: Collection[str], *, exclude_status: Collection[str] = ()
    ) -> list[DriverReportRecord]:
        """The reports among ``report_ids`` (unknown ids are skipped), oldest first;
        ``exclude_status`` leaves out reports in those statuses."""
        if not report_ids:
            return []
        query = select(DriverReportRecord).where(
            DriverReportRecord.report_id.in_(list(report_ids)))
        if exclude_status:
            query = query.where(DriverReportRecord.status.not_in(list(exclude_status)))
        query = query.order_by(DriverReportRecord.created_at, DriverReportRecord.report_id)
        async with self.db.read_session() as session:
            return list((await session.scalars(query)).all())

    async def reports_in_progress(
        self, done_statuses: Collection[str], *, limit: int = 1000
    ) -> list[DriverReportRecord]:
        """Reports not in one of ``done_statuses``, oldest first (at most ``limit``)."""
        query = (
            select(DriverReportRecord)
            .where(DriverReportRecord.status.not_in(list(done_statuses)))
            .order_by(DriverReportRecord.created_at, DriverReportRecord.report_id)
            .limit(limit)
        )
        async with self.db.read_session() as session:
            return list((await session.scalars(query)).all())

    async def update_report(
        self,
        report_id: str,
        *,
        status: str,
        run_id: str | None,
        ticket_id: str | None,
        history: dict[str, Any],
        updated_at: datetime,
    ) -> None:
        """Record where a report is: its status, run, ticket and status history."""
        async with self.db.write_session() as session:
            await session.execute(
                update(DriverReportRecord)
                .where(DriverReportRecord.report_id == report_id)
                .values(status=status, run_id=run_id, ticket_id=ticket_id, history=history,
                        updated_at=as_utc(updated_at))
            )
