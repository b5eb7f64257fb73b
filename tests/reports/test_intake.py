"""Report intake against the real central system: validation, photo checks by content, size
and count limits, the rate limit, closed intake, and who sees what (both databases)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from csms.api import reports
from csms.api.auth import Authenticator
from csms.store.models import DriverReportRecord
from tests.reports.conftest import ReportsEnv, StartReports, image_bytes

STATION = "DRV-IN"
REPORT: dict[str, Any] = {"station_id": STATION, "connector": 1, "category": "wont_start",
                          "text": "nothing happens"}


async def _with_station(start_reports: StartReports, **api: Any) -> ReportsEnv:
    env = await start_reports(**api)
    await env.central.store.ensure_station(STATION)
    return env


async def _nothing_stored(env: ReportsEnv) -> None:
    assert await env.central.store.count_reports() == 0
    assert not (env.central.settings.data_dir / "reports").exists() or not any(
        (env.central.settings.data_dir / "reports").iterdir())


async def test_photos_are_checked_by_content_size_and_count(
    start_reports: StartReports,
) -> None:
    env = await _with_station(start_reports, report_max_photos=2,
                              report_max_photo_bytes=20_000, report_rate_limit="100/minute")
    fake = b"this is a text file, not a photo\n" * 10
    response = await env.file(**REPORT, photos=[("damage.jpg", fake, "image/jpeg")])
    assert response.status_code == 415
    assert "not a JPEG, PNG or WebP" in response.json()["detail"]

    gif = image_bytes("GIF")
    response = await env.file(**REPORT, photos=[("a.gif", gif, "image/gif")])
    assert response.status_code == 415

    big = image_bytes("PNG", (100, 100), noise=True)  # ~30 kB: under the body limit
    assert 20_000 < len(big) < 2 * 20_000
    response = await env.file(**REPORT, photos=[("big.png", big, "image/png")])
    assert response.status_code == 413
    assert "photo 1" in response.json()["detail"]

    huge = image_bytes("PNG", (200, 200), noise=True)  # over the whole body limit
    response = await env.file(**REPORT, photos=[("huge.png", huge, "image/png")])
    assert response.status_code == 413
    assert response.json()["detail"].startswith("request body of ")

    # Without Content-Length (chunked), the body is cut off once it grows past the limit.
    built = httpx.Request("POST", "http://x/", data={k: str(v) for k, v in REPORT.items()},
                          files=[("photos", ("huge.png", huge, "image/png"))])
    body = built.read()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 8192):
            yield body[start:start + 8192]

    response = await env.client.post(
        "/api/v1/reports", content=chunks(),
        headers={"content-type": built.headers["content-type"]})
    assert response.status_code == 413
    assert response.json()["detail"].startswith("request body is over the limit")

    small = image_bytes("PNG")
    response = await env.file(**REPORT, photos=[(f"{n}.png", small, "image/png")
                                                 for n in range(3)])
    assert response.status_code == 413
    assert "too many photos" in response.json()["detail"]
    await _nothing_stored(env)

    webp, jpeg = image_bytes("WEBP"), image_bytes("JPEG")
    response = await env.file(**REPORT, photos=[("x.bin", webp, "application/octet-stream"),
                                                ("../../evil.png", jpeg, "image/png")])
    assert response.status_code == 201, response.text
    report_id = response.json()["report_id"]
    folder = env.central.settings.data_dir / "reports" / report_id
    assert sorted(p.name for p in folder.iterdir()) == ["1.webp", "2.jpg"]
    detail = (await env.client.get(f"/api/v1/reports/{report_id}", headers=env.operator)).json()
    assert [(p["n"], p["content_type"], p["size"]) for p in detail["photos"]] == [
        (1, "image/webp", len(webp)), (2, "image/jpeg", len(jpeg))]

    photo = await env.client.get(detail["photos"][1]["url"], headers=env.operator)
    assert photo.status_code == 200
    assert photo.headers["content-type"] == "image/jpeg" and photo.content == jpeg
    assert (await env.client.get(detail["photos"][1]["url"], headers=env.viewer)).status_code \
        == 403
    assert (await env.client.get(f"/api/v1/reports/{report_id}/photos/3",
                                 headers=env.operator)).status_code == 404


async def test_fields_are_validated(start_reports: StartReports) -> None:
    env = await _with_station(start_reports, report_rate_limit="100/minute")
    response = await env.file(**{**REPORT, "station_id": "NOWHERE"})
    assert response.status_code == 404 and "NOWHERE" in response.json()["detail"]

    response = await env.file(**{**REPORT, "category": "it_is_broken"})
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "category"]
    for category in ("wont_start", "cant_stop_cable_stuck", "payment", "missing_session",
                     "physical_damage", "display_or_reader", "other"):
        assert category in error["msg"]

    # The same checks on the multipart form.
    response = await env.file(**{**REPORT, "category": "it_is_broken"},
                              photos=[("a.png", image_bytes(), "image/png")])
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "category"]

    for bad, field in (({"connector": -1}, "connector"), ({"connector": "two"}, "connector"),
                       ({"text": ""}, "text"), ({"text": "x" * 2001}, "text"),
                       ({"contact": "c" * 201}, "contact"), ({"colour": "red"}, "colour")):
        response = await env.file(**{**REPORT, **bad})
        assert response.status_code == 422, bad
        assert response.json()["detail"][0]["loc"][-1] == field, response.json()
    response = await env.file(station_id=STATION, category="other")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "text"]

    response = await env.client.post("/api/v1/reports", content=b"station=x",
                                     headers={"content-type": "text/plain"})
    assert response.status_code == 415
    response = await env.client.post("/api/v1/reports", content=b"{not json",
                                     headers={"content-type": "application/json"})
    assert response.status_code == 400
    await _nothing_stored(env)

    response = await env.file(**{**REPORT, "connector": "", "text": " nul\x00 inside "},
                              photos=[("", b"", "application/octet-stream")])
    assert response.status_code == 201, response.text
    record = await env.central.store.get_report(response.json()["report_id"])
    assert record is not None and record.connector is None
    assert record.text == "nul\ufffd inside"

    form = {k: str(v) for k, v in REPORT.items()}  # a plain HTML form (urlencoded)
    response = await env.client.post("/api/v1/reports", data=form)
    assert response.status_code == 201, response.text
    assert response.request.headers["content-type"] == "application/x-www-form-urlencoded"


async def test_anonymous_intake_is_rate_limited_operators_are_not(
    start_reports: StartReports,
) -> None:
    env = await _with_station(start_reports, report_rate_limit="2/minute")
    for _ in range(2):
        assert (await env.file(**REPORT)).status_code == 201
    refused = await env.file(**REPORT)
    assert refused.status_code == 429
    assert 0 < int(refused.headers["retry-after"]) <= 60
    assert "too many reports" in refused.json()["detail"]
    for _ in range(3):
        response = await env.file(**REPORT, headers=env.operator)
        assert response.status_code == 201, response.text
    assert (await env.file(**REPORT)).status_code == 429
    assert await env.central.store.count_reports() == 5


async def test_closed_intake_needs_an_operator(start_reports: StartReports) -> None:
    env = await _with_station(start_reports, reports_open=False)
    response = await env.file(**REPORT)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert (await env.file(**REPORT, headers=env.viewer)).status_code == 403
    bad = {"Authorization": "Bearer csms_0000.nope"}
    assert (await env.file(**REPORT, headers=bad)).status_code == 401
    assert await env.central.store.count_reports() == 0
    response = await env.file(**REPORT, headers=env.operator)
    assert response.status_code == 201, response.text


async def test_contact_for_operators_only_and_token_kept_as_hash(
    start_reports: StartReports,
) -> None:
    env = await _with_station(start_reports)
    response = await env.file(**REPORT, contact="driver@example.org")
    assert response.status_code == 201
    created = response.json()
    token, report_id = created["tracking_token"], created["report_id"]

    url = f"/api/v1/reports/{report_id}"
    as_operator = (await env.client.get(url, headers=env.operator)).json()
    as_viewer = (await env.client.get(url, headers=env.viewer)).json()
    assert as_operator["contact"] == "driver@example.org"
    assert as_operator["client_address"] == "127.0.0.1"
    assert as_viewer["contact"] is None and as_viewer["client_address"] is None
    assert as_viewer["text"] == "nothing happens"
    assert (await env.client.get(url)).status_code == 401
    listing = (await env.client.get(f"/api/v1/reports?station_id={STATION}",
                                    headers=env.viewer)).json()
    assert listing["total"] == 1 and listing["items"][0]["contact"] is None
    listing = (await env.client.get("/api/v1/reports", headers=env.operator)).json()
    assert listing["items"][0]["contact"] == "driver@example.org"
    assert (await env.client.get("/api/v1/reports?status=resolved",
                                 headers=env.viewer)).json()["total"] == 0
    assert (await env.client.get("/api/v1/reports/rep_unknown",
                                 headers=env.viewer)).status_code == 404

    tracked = await env.client.get(f"/api/v1/reports/track/{token}")
    assert tracked.status_code == 200 and tracked.headers["cache-control"] == "no-store"
    assert "contact" not in tracked.json() and "text" not in tracked.json()
    assert (await env.client.get(f"/api/v1/reports/track/{token}x")).status_code == 404

    async with env.central.database.read_session() as session:
        row = (await session.execute(
            select(DriverReportRecord.__table__).where(
                DriverReportRecord.report_id == report_id))).one()
    assert row.tracking_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in repr(tuple(row))
    for notice in env.notices:
        assert "driver@example.org" not in repr(notice.to_dict())
        assert token not in repr(notice.to_dict())


async def test_openapi_documents_the_report_endpoints(start_reports: StartReports) -> None:
    env = await start_reports()
    ctx = env.central.api
    app = FastAPI()
    app.include_router(reports.router(ctx, Authenticator(ctx)), prefix="/api/v1")
    doc = app.openapi()
    intake = doc["paths"]["/api/v1/reports"]["post"]
    content = intake["requestBody"]["content"]
    assert "photos" in content["multipart/form-data"]["schema"]["properties"]
    category = content["application/json"]["schema"]["properties"]["category"]
    assert "physical_damage" in category["enum"]
    assert {"201", "413", "415", "422", "429"} <= set(intake["responses"])
    assert {} in intake["security"]
    track = doc["paths"]["/api/v1/reports/track/{token}"]["get"]
    assert "security" not in track
    assert track["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ReportTracking"}
    for path in ("/api/v1/reports/{report_id}", "/api/v1/reports/{report_id}/photos/{n}"):
        assert doc["paths"][path]["get"]["security"] == [{"token": []}]
