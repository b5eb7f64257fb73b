"""Request limits of the HTTP side over real sockets: the API's rate per address (429) and body
size (413), the uploads' rate per address (HTTP 429, FTP 421) and size (413); each refusal
answered with a reason, logged and counted."""

from __future__ import annotations

import asyncio
import ftplib
from collections.abc import AsyncIterator

import httpx
import pytest

from csms.app import CentralSystem
from csms.settings import UploadSettings
from csms.uploads.registry import SlotState
from tests.api.conftest import auth, create_token
from tests.conftest import MakeCentral
from tests.limits.conftest import JsonLogs, limited, refusals


def _client(central: CentralSystem) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{central.http.port}", timeout=10.0)


async def _chunks(data: bytes, size: int = 256) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


async def test_api_requests_over_the_rate_get_429(
    make_central: MakeCentral, json_logs: JsonLogs
) -> None:
    central = await limited(make_central, api_requests_per_minute=3)
    token = await create_token(central.store, "viewer")
    slot = central.uploads.open("API-RATE", 1)
    async with _client(central) as http:
        for _ in range(3):
            assert (await http.get("/api/v1/stations", headers=auth(token))).status_code == 200
        refused = await http.get("/api/v1/stations", headers=auth(token))
        assert refused.status_code == 429
        assert refused.json()["limit"] == "api_rate"
        assert "too many requests from this address" in refused.json()["detail"]
        assert int(refused.headers["retry-after"]) >= 1
        # Without a token too: the limit comes before authentication.
        assert (await http.get("/api/v1/stations")).status_code == 429
        # Other paths have limits of their own, or none.
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get("/metrics")).status_code == 200
        assert (await http.put(slot.http_location, content=b"log line\n")).status_code == 201
    assert await refusals(central, "api_rate") == 2
    logged = json_logs.lines("http_request_refused")
    assert [line["limit"] for line in logged] == ["api_rate", "api_rate"]
    assert logged[0]["status"] == 429 and logged[0]["client"] == "127.0.0.1"
    assert logged[0]["path"] == "/api/v1/stations" and logged[0]["method"] == "GET"


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_api_body_over_the_limit_gets_413(
    make_central: MakeCentral, json_logs: JsonLogs, declared: bool
) -> None:
    central = await limited(make_central, api_max_body_bytes=1024)
    token = await create_token(central.store, "operator")
    path = "/api/v1/stations/BODY-1/commands/get-log"
    body = b'{"kind": "DiagnosticsLog", "pad": "' + b"x" * 2000 + b'"}'
    async with _client(central) as http:
        content = body if declared else _chunks(body)
        refused = await http.post(path, content=content,
                                  headers={**auth(token), "content-type": "application/json"})
        assert refused.status_code == 413
        assert refused.json() == {"detail": "request body larger than 1024 bytes",
                                  "limit": "api_body_size"}
        # Under the limit the endpoint answers for itself (here: no such station).
        small = await http.post(path, json={"kind": "DiagnosticsLog"}, headers=auth(token))
        assert small.status_code != 413
    assert await refusals(central, "api_body_size") == 1
    [logged] = json_logs.lines("http_request_refused")
    assert logged["limit"] == "api_body_size" and logged["max_bytes"] == 1024


async def test_report_intake_may_carry_its_photos(make_central: MakeCentral) -> None:
    central = await limited(make_central, api_max_body_bytes=1024)
    body = b'{"station_id": "NOPE", "category": "other", "text": "' + b"y" * 3000 + b'"}'
    async with _client(central) as http:
        answer = await http.post("/api/v1/reports", content=body,
                                 headers={"content-type": "application/json"})
    assert answer.status_code != 413 or answer.json().get("limit") != "api_body_size"
    assert await refusals(central, "api_body_size") == 0


async def test_uploads_over_the_rate_get_429_and_keep_their_slot(
    make_central: MakeCentral, json_logs: JsonLogs
) -> None:
    central = await limited(make_central, uploads_per_minute=2)
    slots = [central.uploads.open("UP-RATE", n) for n in range(3)]
    async with _client(central) as http:
        for slot in slots[:2]:
            assert (await http.put(slot.http_location, content=b"log\n")).status_code == 201
        refused = await http.put(slots[2].http_location + "diag.log", content=b"log\n")
        assert refused.status_code == 429
        assert refused.json()["limit"] == "upload_rate"
        assert int(refused.headers["retry-after"]) >= 1
        # The API has a limit of its own.
        assert (await http.get("/api/v1/stations")).status_code == 401
    assert slots[2].state is SlotState.OPEN  # refused before the slot was claimed
    assert await refusals(central, "upload_rate") == 1
    [logged] = json_logs.lines("http_request_refused")
    assert logged["limit"] == "upload_rate" and logged["path"] == "/uploads/<token>"
    server_lines = [line for line in json_logs.lines() if line["logger"].startswith("csms")]
    assert server_lines and slots[2].token not in str(server_lines)


async def test_upload_over_its_size_is_counted(
    make_central: MakeCentral, json_logs: JsonLogs
) -> None:
    central = await make_central(settings={
        "uploads": UploadSettings(ftp_host="127.0.0.1", ftp_port=0, max_bytes=1024)})
    slot = central.uploads.open("UP-BIG", 1)
    async with _client(central) as http:
        refused = await http.put(slot.http_location, content=b"z" * 2048)
    assert refused.status_code == 413
    assert refused.json() == {"detail": "upload larger than 1024 bytes"}
    assert await refusals(central, "upload_body_size") == 1
    [logged] = json_logs.lines("http_request_refused")
    assert logged["limit"] == "upload_body_size" and logged["source"] == "endpoint"


async def test_exempt_networks_have_no_rate_but_the_body_limit(make_central: MakeCentral) -> None:
    central = await limited(make_central, api_requests_per_minute=1, uploads_per_minute=1,
                            api_max_body_bytes=1024, exempt_networks=("127.0.0.1/32",))
    async with _client(central) as http:
        for _ in range(5):
            assert (await http.get("/api/v1/stations")).status_code == 401
        for n in range(3):
            slot = central.uploads.open("UP-EXEMPT", n)
            assert (await http.put(slot.http_location, content=b"log\n")).status_code == 201
        big = await http.post("/api/v1/tokens", content=b"{" + b" " * 2048 + b"}",
                              headers={"content-type": "application/json"})
        assert big.status_code == 413
    assert await refusals(central, "api_rate") == 0
    assert await refusals(central, "upload_rate") == 0
    assert await refusals(central, "api_body_size") == 1


def _ftp_welcome(port: int) -> str:
    ftp = ftplib.FTP()
    try:
        return ftp.connect("127.0.0.1", port, timeout=5)
    except ftplib.error_temp as exc:
        return str(exc)
    finally:
        ftp.close()


async def test_ftp_connections_over_the_rate_get_421(
    make_central: MakeCentral, json_logs: JsonLogs
) -> None:
    central = await limited(make_central, uploads_per_minute=2)
    assert central.ftp is not None
    port = central.ftp.port
    welcomes = [await asyncio.to_thread(_ftp_welcome, port) for _ in range(3)]
    assert [w[:3] for w in welcomes] == ["220", "220", "421"], welcomes
    assert "too many connections from this address" in welcomes[2]
    assert await refusals(central, "upload_rate") == 1
    [logged] = json_logs.lines("ftp_connection_refused")
    assert logged["client"] == "127.0.0.1" and logged["retry_after"] >= 1
