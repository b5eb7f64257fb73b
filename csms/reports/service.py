"""The driver report service: file a report, start a diagnosis, follow it.

Filing stores the report (photos under ``data_dir/reports/<report_id>/``, the tracking token
as a SHA-256 only), hands a :class:`~diagnostics.events.DriverFaultReported` to the
diagnostics runner and publishes ``report/received``. From then on the report follows the run
it joined and that run's ticket: the service listens to the run and ticket notices on the bus
(from the moment the API is built, whether or not anyone calls it) and moves each listed
report forward (:mod:`csms.reports.status`), publishing ``report/status`` on every change.

Bus subscribers must not block: notices are queued and applied, in order, by one task that
runs while there is work. When the HTTP app starts, reports still in progress are checked
against the stored runs and tickets (a notice missed during a restart is caught up); a report
the engine never took up (a crash right after it was filed) is filed with it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from csms.api.context import ApiContext
from csms.bus import EventBus, Notice, Topic
from csms.logs import get_logger
from csms.reports.intake import RawPhoto
from csms.reports.photos import Photo, check_photo, remove_photos, store_photos
from csms.reports.ratelimit import IntakeLimiter
from csms.reports.schemas import ReportIn
from csms.reports.status import (
    FINAL_STATUSES,
    ReportStatus,
    Verdict,
    advances,
    report_ids,
    run_verdict,
    ticket_verdict,
)
from csms.store.base import utc_now
from csms.store.models import DriverReportRecord
from csms.tasks import cancel_and_wait
from diagnostics.events import DriverCategory, DriverFaultReported

log = get_logger("csms.reports")

EXTRAS_KEY = "reports"
"""Where the service is kept in :attr:`ApiContext.extras`."""
MAX_REFILES = 3
"""How often a report whose run ended without an answer is filed again."""
STOP_TIMEOUT = 5.0
"""Seconds the pending status changes get at shutdown."""
RECONCILE_RUNS = 50
"""Recent runs of a station searched for a report the store has no run for."""
_FINAL = tuple(status.value for status in FINAL_STATUSES)


def tracking_hash(token: str) -> str:
    """What is stored of a tracking token: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_report_id() -> str:
    """A fresh report id (``rep_`` and 16 hex digits)."""
    return f"rep_{secrets.token_hex(8)}"


def new_tracking_token() -> str:
    """A fresh tracking token (24 random bytes, URL-safe)."""
    return secrets.token_urlsafe(24)


@dataclass(frozen=True, slots=True)
class FiledReport:
    """A stored report and its tracking token (shown once)."""

    record: DriverReportRecord
    tracking_token: str


class _Reconcile:
    """Work item: catch up with the stored runs and tickets."""


class ReportService:
    """Files driver reports and keeps their status in step with the diagnosis."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx
        self.settings = ctx.settings.api
        self.limiter = IntakeLimiter(self.settings.report_rate_limit)
        self.photo_root = ctx.data_dir / "reports"
        self._pending: deque[Notice | _Reconcile] = deque()
        self._worker: asyncio.Task[None] | None = None
        self._unsubscribe: list[Callable[[], None]] = [
            bus.subscribe(self._on_notice) for bus in self._buses()
        ]

    @classmethod
    def of(cls, ctx: ApiContext) -> ReportService:
        """The context's service, created (and subscribed) on first use."""
        existing = ctx.extras.get(EXTRAS_KEY)
        if isinstance(existing, ReportService):
            return existing
        service = cls(ctx)
        ctx.extras[EXTRAS_KEY] = service
        return service

    def _buses(self) -> list[EventBus]:
        """The bus the run and ticket notices come on."""
        return [self.ctx.bus]

    # ------------------------------------------------------------------ intake

    async def check_photos(self, photos: list[RawPhoto]) -> list[Photo]:
        """Check every photo's real content and size (raises ``PhotoRejected``)."""
        limit = self.settings.report_max_photo_bytes
        return [await asyncio.to_thread(check_photo, raw.data, max_bytes=limit,
                                        label=raw.label) for raw in photos]

    async def file(
        self, report: ReportIn, photos: list[Photo], *, client_address: str | None,
        by: str | None = None,
    ) -> FiledReport:
        """Store a report (the station must exist), start its diagnosis, announce it."""
        report_id = new_report_id()
        token = new_tracking_token()
        now = utc_now()
        items: list[dict[str, object]] = []
        if photos:
            items = await asyncio.to_thread(store_photos, self.photo_root, report_id, photos)
        try:
            record = await self.ctx.store.create_report(
                report_id=report_id, station_id=report.station_id, connector=report.connector,
                category=report.category, text=report.text, contact=report.contact,
                tracking_hash=tracking_hash(token), status=ReportStatus.RECEIVED.value,
                photos=items, history=[_entry(ReportStatus.RECEIVED, now)],
                client_address=client_address, created_at=now,
            )
        except BaseException:
            if items:
                await asyncio.to_thread(remove_photos, self.photo_root, report_id)
            raise
        log.info("report_received", report_id=report_id, charger_id=report.station_id,
                 connector=report.connector, category=report.category, photos=len(items),
                 by=by)
        self._observe(record)
        self.ctx.bus.emit(Topic.REPORT, "received", record.station_id, {
            "report_id": record.report_id, "category": record.category,
            "connector": record.connector, "status": record.status, "text": record.text,
            "photos": len(items),
        })
        return FiledReport(record, token)

    def _observe(self, record: DriverReportRecord) -> bool:
        """Hand the report to the diagnostics engine; ``False`` when diagnostics are off."""
        runner = self.ctx.runner
        if runner is None:
            return False
        runner.observe(DriverFaultReported(
            station_id=record.station_id, at=utc_now(), connector_id=record.connector,
            category=DriverCategory.parse(record.category), text=record.text,
            report_id=record.report_id,
        ))
        return True

    # ------------------------------------------------------------------ following

    def _on_notice(self, notice: Notice) -> None:
        """Bus subscriber: queue the run and ticket notices that list driver reports."""
        if notice.origin is not None:  # another node's: that node follows it
            return
        if notice.topic not in (Topic.RUN, Topic.TICKET) or not report_ids(notice.data):
            return
        self._pending.append(notice)
        self._kick()

    def _kick(self) -> None:
        if self._worker is not None and not self._worker.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # picked up by the next notice or at start
        self._worker = loop.create_task(self._drain(), name="driver-reports")

    async def _drain(self) -> None:
        while self._pending:
            item = self._pending.popleft()
            try:
                if isinstance(item, _Reconcile):
                    await self._reconcile()
                else:
                    await self._apply(item)
            except Exception:
                log.exception("report_status_failed", item=type(item).__name__)

    async def _apply(self, notice: Notice) -> None:
        verdict = (run_verdict(notice.data) if notice.topic is Topic.RUN
                   else ticket_verdict(notice.data))
        records = await self.ctx.store.reports_by_ids(report_ids(notice.data),
                                                      exclude_status=_FINAL)
        for record in records:
            await self._move(record, verdict, from_run=notice.topic is Topic.RUN)

    async def _move(self, record: DriverReportRecord, verdict: Verdict, *, from_run: bool) -> None:
        """Apply a verdict to one report: status forward only, run and ticket noted."""
        current = ReportStatus(record.status)
        if current.final:
            return
        history: dict[str, Any] = {"items": [], "refiled": 0, **(record.history or {})}
        if verdict.refile:
            await self._refile(record, verdict, history)
            return
        # A run notice names the run the report is in now; a ticket notice names the run that
        # opened the ticket, which may be an earlier one.
        first, second = (verdict, record) if from_run else (record, verdict)
        run_id = first.run_id or second.run_id
        ticket_id = verdict.ticket_id or record.ticket_id
        status = current
        if verdict.status is not None and advances(current, verdict.status):
            status = verdict.status
        if (status, run_id, ticket_id) == (current, record.run_id, record.ticket_id):
            return
        now = utc_now()
        if status is not current:
            history["items"] = [*history["items"], _entry(status, now)]
        await self.ctx.store.update_report(record.report_id, status=status.value, run_id=run_id,
                                           ticket_id=ticket_id, history=history,
                                           updated_at=now)
        if status is current:
            return
        log.info("report_status", report_id=record.report_id, charger_id=record.station_id,
                 status=status.value, previous=current.value, run_id=run_id,
                 ticket_id=ticket_id)
        self.ctx.bus.emit(Topic.REPORT, "status", record.station_id, {
            "report_id": record.report_id, "category": record.category,
            "connector": record.connector, "status": status.value,
            "previous": current.value, "run_id": run_id, "ticket_id": ticket_id,
        })

    async def _refile(
        self, record: DriverReportRecord, verdict: Verdict, history: dict[str, Any]
    ) -> None:
        """The report's run ended without an answer (merged, superseded): file it again, so
        that it joins the run that took over (at most :data:`MAX_REFILES` times)."""
        if record.run_id is not None and record.run_id != verdict.run_id:
            return  # the end of a run the report has already left
        if history["refiled"] >= MAX_REFILES or not self._observe(record):
            return
        history["refiled"] += 1
        log.info("report_refiled", report_id=record.report_id, ended_run=verdict.run_id,
                 attempt=history["refiled"])
        await self.ctx.store.update_report(
            record.report_id, status=record.status, run_id=None, ticket_id=record.ticket_id,
            history=history, updated_at=utc_now())

    async def _reconcile(self) -> None:
        """Catch up with runs and tickets stored while nobody applied their notices."""
        store = self.ctx.store
        for record in await store.reports_in_progress(_FINAL):
            if record.ticket_id is not None:
                ticket = await store.get_ticket(record.ticket_id)
                if ticket is not None:
                    data = {**ticket.data, "status": ticket.status}
                    await self._move(record, ticket_verdict(data), from_run=False)
                continue
            if record.run_id is not None:
                run = await store.get_run(record.run_id)
                if run is not None:
                    await self._move(record, run_verdict(run.data), from_run=True)
                continue
            for run in await store.runs(record.station_id, limit=RECONCILE_RUNS):
                if record.report_id in report_ids(run.data):
                    await self._move(record, run_verdict(run.data), from_run=True)
                    break
            else:
                if self._observe(record):
                    log.info("report_refiled", report_id=record.report_id, ended_run=None,
                             reason="not taken up before a restart")

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Catch up with what was stored while the service did not run (in the background)."""
        self._pending.appendleft(_Reconcile())
        self._kick()

    async def stop(self) -> None:
        """Give the pending status changes a few seconds, then stop the worker."""
        worker = self._worker
        if worker is None or worker.done():
            return
        try:
            await asyncio.wait_for(asyncio.shield(worker), STOP_TIMEOUT)
        except TimeoutError:
            log.warning("report_status_pending_dropped", pending=len(self._pending))
            await cancel_and_wait(worker)

    @contextlib.asynccontextmanager
    async def lifespan(self, app: object) -> AsyncIterator[None]:
        """The HTTP app's lifespan part: catch up at start, drain at stop."""
        self.start()
        try:
            yield
        finally:
            await self.stop()

    def close(self) -> None:
        """Stop listening to the bus."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()


def _entry(status: ReportStatus, at: datetime) -> dict[str, str]:
    return {"status": status.value, "at": at.isoformat()}
