"""Driver fault reports: intake (open and rate limited, or operators only), tracking by token,
and the operators' views.

- ``POST /reports``: file a report (multipart with photos, or JSON); anyone when
  ``api.reports_open`` (rate limited per client address), operators always (not limited).
- ``GET /reports/track/{token}``: the report's status for the driver (no token needed beyond
  the tracking token itself; no personal data).
- ``GET /reports``, ``GET /reports/{report_id}`` (viewer; contact and address for operators),
  ``GET /reports/{report_id}/photos/{n}`` (operator).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi import Path as PathParam
from fastapi.responses import FileResponse

from csms.api.auth import BEARER, Authenticator, Principal
from csms.api.context import ApiContext
from csms.api.schemas import MAX_OFFSET
from csms.api.tokens import Role
from csms.reports.intake import read_intake
from csms.reports.photos import PhotoRejected
from csms.reports.schemas import (
    PhotoOut,
    ReportCreated,
    ReportIn,
    ReportOut,
    ReportPage,
    ReportTracking,
    StatusChange,
    StatusName,
)
from csms.reports.service import ReportService, tracking_hash
from csms.store.models import DriverReportRecord

TOKEN_MAX_LENGTH = 128

_MULTIPART_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["station_id", "category", "text"],
    "properties": {
        **{name: schema for name, schema in
           ReportIn.model_json_schema()["properties"].items()},
        "photos": {"type": "array", "items": {"type": "string", "format": "binary"},
                   "description": "JPEG, PNG or WebP photos (checked by content)"},
    },
}
_INTAKE_OPENAPI: dict[str, Any] = {
    "security": [{}],  # added to the bearer scheme: the token is optional
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": _MULTIPART_SCHEMA},
            "application/json": {"schema": ReportIn.model_json_schema()},
        },
    },
}
_INTAKE_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "Malformed body"},
    401: {"description": "Intake closed (`api.reports_open = false`) and no valid token"},
    403: {"description": "Intake closed and the token is below operator"},
    404: {"description": "Unknown station"},
    413: {"description": "Body, a photo or the number of photos over the limit"},
    415: {"description": "Neither JSON nor multipart, or a photo that is not JPEG/PNG/WebP"},
    422: {"description": "Invalid fields (the reason lists the allowed categories)"},
    429: {"description": "Too many reports from this address (see `Retry-After`)"},
}


def tracking_view(record: DriverReportRecord) -> ReportTracking:
    """What the driver sees."""
    return ReportTracking.model_validate(_common(record))


def report_view(
    record: DriverReportRecord, *, personal: bool, photo_url: Callable[[str, int], str]
) -> ReportOut:
    """What operators see; ``personal``: with the contact and the client address."""
    photos = [
        PhotoOut(n=item["n"], content_type=item["content_type"], size=item["size"],
                 width=item.get("width"), height=item.get("height"),
                 url=photo_url(record.report_id, item["n"]))
        for item in (record.photos or {}).get("items", [])
    ]
    return ReportOut.model_validate({
        **_common(record), "text": record.text,
        "contact": record.contact if personal else None,
        "client_address": record.client_address if personal else None,
        "run_id": record.run_id, "ticket_id": record.ticket_id, "photos": photos,
    })


def _photo_url(request: Request) -> Callable[[str, int], str]:
    def url(report_id: str, n: int) -> str:
        return str(request.app.url_path_for("report_photo", report_id=report_id, n=str(n)))

    return url


def _common(record: DriverReportRecord) -> dict[str, Any]:
    history = [StatusChange.model_validate(item)
               for item in (record.history or {}).get("items", [])]
    return {
        "report_id": record.report_id, "station_id": record.station_id,
        "connector": record.connector, "category": record.category, "status": record.status,
        "history": history, "created_at": record.created_at, "updated_at": record.updated_at,
    }


def router(ctx: ApiContext, auth: Authenticator) -> APIRouter:
    """``/reports...``; builds the report service (which follows the diagnoses from now on)."""
    service = ReportService.of(ctx)
    api = APIRouter(tags=["reports"], lifespan=service.lifespan)
    viewer = Depends(auth.require(Role.VIEWER))
    operator = Depends(auth.require(Role.OPERATOR))
    settings = ctx.settings.api

    async def caller(request: Request, _: object = Depends(BEARER)) -> Principal | None:
        """The token holder when a token is sent (an invalid one: 401), else ``None``."""
        if not request.headers.get("authorization"):
            return None
        return await auth.principal(request)

    optional_caller = Depends(caller)

    @api.post(
        "/reports", summary="File a driver fault report", status_code=status.HTTP_201_CREATED,
        openapi_extra=_INTAKE_OPENAPI, responses=_INTAKE_RESPONSES,
    )
    async def file_report(
        request: Request, principal: Principal | None = optional_caller,
    ) -> ReportCreated:
        """File a report about a station (and connector): category, text, optional contact
        and photos. Returns the report id and a tracking token (shown once). The report
        starts a diagnosis; follow it at ``track_url``."""
        is_operator = principal is not None and principal.role.allows(Role.OPERATOR)
        if not is_operator and not settings.reports_open:
            if principal is None:
                raise HTTPException(status.HTTP_401_UNAUTHORIZED,
                                    "report intake is closed: an operator token is required",
                                    headers={"WWW-Authenticate": "Bearer"})
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                "report intake is closed: role operator required "
                                f"(token has {principal.role.value})")
        address = request.client.host if request.client else None
        if not is_operator:
            refusal = service.limiter.hit(address or "unknown")
            if refusal is not None:
                raise HTTPException(
                    status.HTTP_429_TOO_MANY_REQUESTS,
                    f"too many reports from this address (limit {refusal.limit}); "
                    f"retry in {refusal.retry_after} s",
                    headers={"Retry-After": str(refusal.retry_after)},
                )
        intake = await read_intake(request, max_photos=settings.report_max_photos,
                                   max_photo_bytes=settings.report_max_photo_bytes)
        report = intake.report
        if await ctx.store.get_station(report.station_id) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND,
                                f"unknown station {report.station_id!r}")
        try:
            photos = await service.check_photos(intake.photos)
        except PhotoRejected as exc:
            raise HTTPException(exc.status, exc.reason) from exc
        filed = await service.file(report, photos, client_address=address,
                                   by=principal.label if principal else None)
        return ReportCreated(
            report_id=filed.record.report_id, tracking_token=filed.tracking_token,
            status="received",
            track_url=str(request.app.url_path_for("report_track",
                                                  token=filed.tracking_token)),
        )

    @api.get("/reports/track/{token}", summary="Follow a report (driver)", name="report_track",
             responses={404: {"description": "Unknown tracking token"}})
    async def track_report(
        token: Annotated[str, PathParam(max_length=TOKEN_MAX_LENGTH)], response: Response,
    ) -> ReportTracking:
        """The report's status and its history; needs only the tracking token."""
        record = await ctx.store.report_by_tracking_hash(tracking_hash(token))
        if record is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "unknown tracking token")
        response.headers["Cache-Control"] = "no-store"
        return tracking_view(record)

    @api.get("/reports", summary="List driver reports")
    async def list_reports(
        request: Request,
        principal: Principal = viewer,
        station_id: str | None = None,
        status_: Annotated[StatusName | None, Query(alias="status")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    ) -> ReportPage:
        """Reports, newest first (contact and client address for operators only)."""
        personal = principal.role.allows(Role.OPERATOR)
        records = await ctx.store.reports(station_id, status=status_, limit=limit,
                                          offset=offset)
        total = await ctx.store.count_reports(station_id, status=status_)
        photo_url = _photo_url(request)
        return ReportPage(
            items=[report_view(r, personal=personal, photo_url=photo_url) for r in records],
            total=total,
        )

    @api.get("/reports/{report_id}", summary="Driver report detail",
             responses={404: {"description": "Unknown report"}})
    async def get_report(
        request: Request, report_id: str, principal: Principal = viewer
    ) -> ReportOut:
        """One report with its status history, run, ticket and photos."""
        record = await ctx.store.get_report(report_id)
        if record is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown report {report_id!r}")
        return report_view(record, personal=principal.role.allows(Role.OPERATOR),
                           photo_url=_photo_url(request))

    @api.get(
        "/reports/{report_id}/photos/{n}", summary="A photo of a report (operator)",
        name="report_photo",
        response_class=FileResponse,
        responses={200: {"content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}}},
                   404: {"description": "Unknown report or photo"}},
    )
    async def get_photo(
        report_id: str, n: Annotated[int, PathParam(ge=1)], principal: Principal = operator,
    ) -> FileResponse:
        """The n-th photo (from 1), with its content type."""
        record = await ctx.store.get_report(report_id)
        items = (record.photos or {}).get("items", []) if record is not None else []
        item = next((i for i in items if i.get("n") == n), None)
        if record is None or item is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "unknown report or photo")
        root = service.photo_root.resolve()
        path = (root / str(item["path"])).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            raise HTTPException(status.HTTP_404_NOT_FOUND, "photo file missing")
        return FileResponse(path, media_type=str(item["content_type"]),
                            headers={"Cache-Control": "private, no-store"})

    return api

