"""HTTP uploads over real loopback sockets: uvicorn in-process on port 0, httpx as the charger."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from csms.http import HttpServer, create_app
from csms.uploads import UploadedLog, Uploads
from csms.uploads.storage import MAX_NAME_LENGTH
from tests.uploads.conftest import MAX_BYTES, FakeClock, stored_files

SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
PAYLOAD = b"2025-01-02 03:04:05 ERROR lock motor stalled\n" * 20


def _path(location: str) -> str:
    return httpx.URL(location).raw_path.decode()


async def test_put_to_the_location_itself(
    client: httpx.AsyncClient, uploads: Uploads, upload_root: Path, received: list[UploadedLog]
) -> None:
    slot = uploads.open("CP-1", 7)
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/uploads/[A-Za-z0-9]{32}/", slot.http_location)

    response = await client.put(slot.http_location, content=PAYLOAD)

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["size"] == len(PAYLOAD)
    assert body["sha256"] == hashlib.sha256(PAYLOAD).hexdigest()
    [path] = stored_files(upload_root)
    assert path.parent == upload_root / "CP-1"
    assert path.name == "7-20250102T030405Z-log" == body["filename"]
    assert path.read_bytes() == PAYLOAD
    await uploads.registry.aclose()
    assert [(r.station_id, r.request_id, r.protocol, r.filename_as_sent) for r in received] == [
        ("CP-1", 7, "http", None)
    ]


@pytest.mark.parametrize(
    "suffix", ["diag-CP1.zip", "/diag-CP1.zip"], ids=["appended", "appended-with-slash"]
)
async def test_put_with_the_chargers_file_name(
    client: httpx.AsyncClient, uploads: Uploads, upload_root: Path, suffix: str
) -> None:
    slot = uploads.open("CP-1", 8)
    response = await client.put(slot.http_location + suffix, content=PAYLOAD)
    assert response.status_code == 201, response.text
    [path] = stored_files(upload_root)
    assert path.name == "8-20250102T030405Z-diag-CP1.zip"
    assert slot.result is not None
    assert slot.result.filename_as_sent == suffix


async def test_put_without_trailing_slash(client: httpx.AsyncClient, uploads: Uploads) -> None:
    slot = uploads.open("CP-1", 9)
    response = await client.put(slot.http_location.rstrip("/"), content=PAYLOAD)
    assert response.status_code == 201, response.text


async def test_multipart_post_any_field_name(
    client: httpx.AsyncClient, uploads: Uploads, upload_root: Path, received: list[UploadedLog]
) -> None:
    slot = uploads.open("CP-2", 11)
    response = await client.post(
        slot.http_location,
        data={"note": "from the charger"},
        files={"uploadedfile": ("diag.tar.gz", PAYLOAD, "application/gzip")},
    )
    assert response.status_code == 201, response.text
    [path] = stored_files(upload_root)
    assert path.name == "11-20250102T030405Z-diag.tar.gz"
    assert path.read_bytes() == PAYLOAD
    await uploads.registry.aclose()
    [uploaded] = received
    assert uploaded.filename_as_sent == "diag.tar.gz"
    assert uploaded.sha256 == hashlib.sha256(PAYLOAD).hexdigest()


async def test_multipart_post_with_the_name_in_the_url(
    client: httpx.AsyncClient, uploads: Uploads, upload_root: Path
) -> None:
    slot = uploads.open("CP-2", 12)
    response = await client.post(slot.http_location + "log.txt", files={"file": PAYLOAD})
    assert response.status_code == 201, response.text
    # httpx names the part "upload" when given bare bytes; the part's name wins over the URL's.
    [path] = stored_files(upload_root)
    assert path.read_bytes() == PAYLOAD


async def test_multipart_single_plain_field_is_the_file(
    client: httpx.AsyncClient, uploads: Uploads, upload_root: Path
) -> None:
    slot = uploads.open("CP-2", 13)
    boundary = "xyz123"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="log"\r\n\r\n'.encode()
        + PAYLOAD
        + f"\r\n--{boundary}--\r\n".encode()
    )
    response = await client.post(
        slot.http_location + "diag.log",
        content=body,
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 201, response.text
    [path] = stored_files(upload_root)
    assert path.name.endswith("-diag.log")
    assert path.read_bytes() == PAYLOAD


async def test_raw_post(client: httpx.AsyncClient, uploads: Uploads, upload_root: Path) -> None:
    slot = uploads.open("CP-3", 14)
    response = await client.post(
        slot.http_location + "diagnostics.csv",
        content=PAYLOAD,
        headers={"content-type": "application/octet-stream"},
    )
    assert response.status_code == 201, response.text
    [path] = stored_files(upload_root)
    assert path.name.endswith("-diagnostics.csv")
    assert path.read_bytes() == PAYLOAD


async def test_token_is_good_for_one_upload(client: httpx.AsyncClient, uploads: Uploads) -> None:
    slot = uploads.open("CP-1", 1)
    assert (await client.put(slot.http_location + "a.log", content=b"one")).status_code == 201
    for method in ("PUT", "POST"):
        again = await client.request(method, slot.http_location + "b.log", content=b"two")
        assert again.status_code == 404
        assert again.json() == {"detail": "upload slot already used"}


async def test_expired_slot_refused(
    client: httpx.AsyncClient, uploads: Uploads, clock: FakeClock, upload_root: Path
) -> None:
    slot = uploads.open("CP-1", 1, ttl=30)
    clock.advance(31)
    response = await client.put(slot.http_location, content=PAYLOAD)
    assert response.status_code == 404
    assert response.json() == {"detail": "upload slot expired"}
    assert stored_files(upload_root) == []


@pytest.mark.parametrize("token", ["A" * 32, "short", "not-a-token!", "a" * 300])
async def test_unknown_token_refused(
    client: httpx.AsyncClient, uploads: Uploads, token: str
) -> None:
    uploads.open("CP-1", 1)
    response = await client.put(f"/uploads/{token}/x.log", content=PAYLOAD)
    assert response.status_code == 404
    assert response.json() == {"detail": "unknown upload token"}


async def test_cancelled_slot_refused(client: httpx.AsyncClient, uploads: Uploads) -> None:
    slot = uploads.open("CP-1", 1)
    uploads.registry.cancel(slot)
    response = await client.put(slot.http_location, content=PAYLOAD)
    assert response.status_code == 404
    assert response.json() == {"detail": "upload slot closed"}


async def _chunked(data: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_too_large_refused_and_partial_removed(
    client: httpx.AsyncClient,
    uploads: Uploads,
    upload_root: Path,
    received: list[UploadedLog],
    declared: bool,
) -> None:
    slot = uploads.open("CP-1", 1)
    big = b"x" * (MAX_BYTES + 1)
    content = big if declared else _chunked(big)
    response = await client.put(slot.http_location + "big.log", content=content)
    assert response.status_code == 413
    assert response.json() == {"detail": f"upload larger than {MAX_BYTES} bytes"}
    assert stored_files(upload_root) == []
    # One request per location (uploads.max_attempts 1): the failed attempt used it up; the
    # charger gets a fresh location when the CSMS asks for its log again.
    retry = await client.put(slot.http_location + "small.log", content=b"y" * MAX_BYTES)
    assert retry.status_code == 404
    assert retry.json() == {"detail": "upload slot closed"}
    await uploads.registry.aclose()
    assert received == []


async def test_too_large_multipart_refused(
    client: httpx.AsyncClient, uploads: Uploads, upload_root: Path
) -> None:
    slot = uploads.open("CP-1", 1)
    response = await client.post(
        slot.http_location, files={"file": ("big.log", b"x" * (MAX_BYTES + 1))}
    )
    assert response.status_code == 413
    assert stored_files(upload_root) == []


@pytest.mark.parametrize("method", ["PUT", "POST"])
async def test_empty_body_refused(
    client: httpx.AsyncClient, uploads: Uploads, upload_root: Path, method: str
) -> None:
    slot = uploads.open("CP-1", 1)
    response = await client.request(method, slot.http_location + "empty.log", content=b"")
    assert response.status_code == 400
    assert response.json() == {"detail": "empty upload"}
    assert stored_files(upload_root) == []
    # One request per location (uploads.max_attempts 1): the empty upload used it up.
    assert (await client.put(slot.http_location, content=b"z")).status_code == 404


@pytest.mark.parametrize(
    ("content_type", "body", "detail"),
    [
        ("multipart/form-data; boundary=abc", b"this is not multipart", "malformed"),
        (
            "multipart/form-data; boundary=abc",
            b"--abc\r\nContent-Disposition: form-d",
            "incomplete",
        ),
        ("multipart/form-data", b"--abc\r\n\r\n", "boundary"),
        (
            "multipart/form-data; boundary=abc",
            b'--abc\r\nContent-Disposition: form-data; name="a"; filename="a"\r\n\r\n1\r\n'
            b'--abc\r\nContent-Disposition: form-data; name="b"; filename="b"\r\n\r\n2\r\n'
            b"--abc--\r\n",
            "more than one file",
        ),
        (
            "multipart/form-data; boundary=abc",
            b'--abc\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n'
            b'--abc\r\nContent-Disposition: form-data; name="b"\r\n\r\n2\r\n'
            b"--abc--\r\n",
            "no file part",
        ),
    ],
    ids=["garbage", "truncated", "no-boundary", "two-files", "no-file"],
)
async def test_bad_multipart_refused(
    client: httpx.AsyncClient,
    uploads: Uploads,
    upload_root: Path,
    content_type: str,
    body: bytes,
    detail: str,
) -> None:
    slot = uploads.open("CP-1", 1)
    response = await client.post(
        slot.http_location, content=body, headers={"content-type": content_type}
    )
    assert response.status_code == 400, response.text
    assert detail in response.json()["detail"]
    assert stored_files(upload_root) == []


LONG = "a" * 5000 + ".log"


@pytest.mark.parametrize(
    ("url_name", "expected_sent"),
    [
        ("..%2F..%2Fetc%2Fpasswd", "../../etc/passwd"),
        ("..%2F..", "../.."),
        ("%2Fetc%2Fpasswd", "/etc/passwd"),
        ("/etc/passwd", "/etc/passwd"),
        ("%2E%2E", ".."),
        ("..%5C..%5Cwindows%5Cwin.ini", "..\\..\\windows\\win.ini"),
        ("evil%00.log", "evil\x00.log"),
        ("line%0Abreak%1B[31m.log", "line\nbreak\x1b[31m.log"),
        (".hidden", ".hidden"),
        ("%E2%80%AEgol.exe", "\u202egol.exe"),
        ("a" * 1000 + ".log", "a" * 1000 + ".log"),
    ],
    ids=[
        "encoded-traversal",
        "encoded-dotdot",
        "encoded-absolute",
        "absolute",
        "dotdot",
        "backslashes",
        "nul",
        "control-chars",
        "hidden",
        "bidi",
        "long",
    ],
)
async def test_url_names_cannot_escape(
    client: httpx.AsyncClient,
    uploads: Uploads,
    upload_root: Path,
    url_name: str,
    expected_sent: str,
) -> None:
    slot = uploads.open("CP-1", 3)
    response = await client.put(_path(slot.http_location) + url_name, content=PAYLOAD)
    assert response.status_code == 201, response.text
    _assert_safely_stored(upload_root, "CP-1")
    assert slot.result is not None
    assert slot.result.filename_as_sent == expected_sent


@pytest.mark.parametrize(
    "name",
    ["../../etc/passwd", "/etc/passwd", "C:\\Windows\\system.ini", "a\x00b", "\x01\x7f", LONG],
    ids=["traversal", "absolute", "windows", "nul", "control", "long"],
)
async def test_multipart_names_cannot_escape(
    client: httpx.AsyncClient, uploads: Uploads, upload_root: Path, name: str
) -> None:
    slot = uploads.open("../../CP 1", 4)
    boundary = "b0undary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="{name}"\r\nContent-Type: text/plain\r\n\r\n'.encode("utf-8", "surrogatepass")
        + PAYLOAD
        + f"\r\n--{boundary}--\r\n".encode()
    )
    response = await client.post(
        slot.http_location,
        content=body,
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 201, response.text
    [path] = stored_files(upload_root)
    assert path.parent.parent == upload_root
    assert ".." not in path.parent.name
    assert path.read_bytes() == PAYLOAD
    assert SAFE_NAME.fullmatch(path.name)
    assert slot.result is not None
    sent = slot.result.filename_as_sent
    assert sent is not None
    assert len(sent) <= 1024


def _assert_safely_stored(root: Path, station: str) -> None:
    [path] = stored_files(root)
    assert path.parent == root / station
    assert path.resolve().is_relative_to(root.resolve())
    assert SAFE_NAME.fullmatch(path.name), path.name
    # request id + timestamp + separators + the bounded name
    assert len(path.name) <= MAX_NAME_LENGTH + 30
    assert path.read_bytes() == PAYLOAD


async def test_concurrent_upload_to_the_same_slot_is_busy(
    client: httpx.AsyncClient, uploads: Uploads, upload_root: Path
) -> None:
    slot = uploads.open("CP-1", 5)
    gate = asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield b"first half "
        await gate.wait()
        yield b"second half"

    first = asyncio.create_task(client.put(slot.http_location + "a.log", content=slow()))
    for _ in range(200):
        if slot.state == "uploading":
            break
        await asyncio.sleep(0.01)
    second = await client.put(slot.http_location + "b.log", content=b"other")
    assert second.status_code == 409
    assert second.json() == {"detail": "an upload to this slot is already in progress"}
    gate.set()
    assert (await first).status_code == 201
    [path] = stored_files(upload_root)
    assert path.read_bytes() == b"first half second half"


async def test_completed_and_listener_fire_once_with_the_hash(
    client: httpx.AsyncClient, uploads: Uploads, received: list[UploadedLog]
) -> None:
    slot = uploads.open("CP-9", 42)
    calls: list[UploadedLog] = []
    uploads.registry.add_listener(calls.append)
    waiter = asyncio.create_task(uploads.registry.completed(slot.token))
    await asyncio.sleep(0)
    assert (await client.put(slot.http_location + "x.log", content=PAYLOAD)).status_code == 201
    assert (await client.put(slot.http_location + "x.log", content=PAYLOAD)).status_code == 404
    uploaded = await asyncio.wait_for(waiter, 5)
    await uploads.registry.aclose()
    assert calls == received == [uploaded]
    assert uploaded.sha256 == hashlib.sha256(PAYLOAD).hexdigest()
    assert uploaded.size == len(PAYLOAD)
    assert uploaded.path.read_bytes() == PAYLOAD
    assert await uploads.registry.completed(slot) is uploaded


async def test_health_and_openapi(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    spec = (await client.get("/openapi.json")).json()
    assert {"/uploads/{token}", "/uploads/{token}/{filename}", "/healthz"} <= set(spec["paths"])
    assert set(spec["paths"]["/uploads/{token}"]) == {"put", "post"}


async def test_server_binds_port_zero_and_stops(uploads: Uploads) -> None:
    server = HttpServer(create_app(uploads=uploads), host="127.0.0.1", port=0)
    await server.start()
    assert server.port != 0
    async with httpx.AsyncClient(base_url=server.url) as client:
        assert (await client.get("/healthz")).status_code == 200
    await server.stop()
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient(base_url=server.url) as client:
            await client.get("/healthz")
    await server.stop()  # idempotent


async def test_busy_port_is_an_error_at_start(uploads: Uploads) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = HttpServer(create_app(), host="127.0.0.1", port=taken.getsockname()[1])
        with pytest.raises(OSError):
            await server.start()


async def test_failed_app_startup_is_an_error_at_start() -> None:
    @contextlib.asynccontextmanager
    async def broken(app: FastAPI) -> AsyncIterator[None]:
        raise RuntimeError("no database")
        yield  # pragma: no cover

    server = HttpServer(create_app(lifespan=broken), host="127.0.0.1", port=0)
    with pytest.raises(RuntimeError, match="startup failed"):
        await server.start()
    await server.stop()
