"""Stored diagnostics logs: list, detail with the signatures found, download."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi.responses import FileResponse

from csms.api.auth import Authenticator, Principal
from csms.api.context import ApiContext
from csms.api.schemas import MAX_ID, MAX_OFFSET, LogFileOut, Page
from csms.api.tokens import Role
from csms.store.models import LogFileRecord


def log_out(record: LogFileRecord) -> LogFileOut:
    """The API form of a stored log."""
    return LogFileOut(
        id=record.id, station_id=record.station_id, request_id=record.request_id,
        protocol=record.protocol, filename_as_sent=record.filename_as_sent, size=record.size,
        sha256=record.sha256, received_at=record.received_at,
        findings=list(record.findings.get("items", [])),
        download_url=f"/api/v1/logs/{record.id}/download",
    )


def _stored_file(stored: str, root: Path) -> Path | None:
    """The stored file if it still exists inside the upload folder (never outside it)."""
    path = Path(stored).resolve()
    if not path.is_relative_to(root.resolve()) or not path.is_file():
        return None
    return path


def router(ctx: ApiContext, auth: Authenticator) -> APIRouter:
    """``/logs...`` (viewer)."""
    api = APIRouter(tags=["logs"])
    viewer = Depends(auth.require(Role.VIEWER))

    async def known(log_id: int) -> LogFileRecord:
        record = await ctx.store.get_log_file(log_id) if 0 < log_id <= MAX_ID else None
        if record is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown log {log_id}")
        return record

    @api.get("/logs", summary="List stored diagnostics logs")
    async def list_logs(
        principal: Principal = viewer,
        station_id: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    ) -> Page[LogFileOut]:
        """Logs chargers uploaded, newest first, with the signatures found in them."""
        rows = await ctx.store.log_files(station_id, limit=limit, offset=offset)
        total = await ctx.store.count_log_files(station_id)
        return Page(items=[log_out(row) for row in rows], total=total)

    @api.get("/logs/{log_id}", summary="Log detail")
    async def get_log(log_id: int, principal: Principal = viewer) -> LogFileOut:
        """One stored log and its findings."""
        return log_out(await known(log_id))

    @api.get("/logs/{log_id}/download", summary="Download a log",
             response_class=FileResponse)
    async def download(log_id: int, principal: Principal = viewer) -> FileResponse:
        """The file as the charger uploaded it."""
        record = await known(log_id)
        root = ctx.uploads.storage.root if ctx.uploads else ctx.data_dir / "uploads"
        path = await asyncio.to_thread(_stored_file, record.path, root)
        if path is None:
            raise HTTPException(status.HTTP_410_GONE, f"log {log_id} is no longer stored")
        name = f"{record.station_id}-{record.request_id}-{record.id}.log"
        return FileResponse(path, media_type="application/octet-stream", filename=name)

    return api
