"""Upload names and paths cannot leave the station's folder: ``..``, absolute paths, encoded
slashes and backslashes in the URL (sent raw, unnormalised), in multipart and
Content-Disposition file names, in FTP STOR and CWD, and in the station id."""

from __future__ import annotations

import asyncio
import json
import secrets
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from csms.app import CentralSystem
from csms.uploads import UploadSlot
from csms.uploads.storage import safe_station_dir
from tests.limits.conftest import ftp_commands

LOG = b"2025-01-02 03:04:05 ERROR insulation fault\n" * 5


def _uploads_root(central: CentralSystem) -> Path:
    return central.settings.data_dir / "uploads"


def _check_contained(central: CentralSystem, slot: UploadSlot, marker: str) -> Path:
    """The slot's file is in its station's folder, and so is every file named after
    ``marker`` under the test session's temporary folder; none in ``/tmp``."""
    assert slot.result is not None
    folder = _uploads_root(central).resolve() / safe_station_dir(slot.station_id)
    path = slot.result.path.resolve()
    assert path.parent == folder
    assert path.read_bytes() == LOG
    session_dir = central.settings.data_dir.resolve().parent
    found = {p.resolve() for p in session_dir.rglob(f"*{marker}*")}
    assert all(p.parent == folder for p in found), found
    assert not (Path("/tmp") / f"{marker}.txt").exists()
    return path


async def _raw_put(port: int, target: str, body: bytes) -> tuple[int, dict[str, str]]:
    """``PUT target`` exactly as given (no client-side normalisation); status and JSON body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        head = (f"PUT {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n").encode()
        writer.write(head + body)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
        await writer.wait_closed()
    status_line, _, rest = raw.partition(b"\r\n")
    _, _, payload = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), json.loads(payload) if payload else {}


@pytest.mark.parametrize(
    "suffix",
    [
        "../../../../{m}.txt",
        "..%2F..%2F..%2F..%2F{m}.txt",
        "%2e%2e%2f%2e%2e%2f%2e%2e%2f{m}.txt",
        "..%5C..%5C..%5C{m}.txt",
        "/tmp/{m}.txt",
        "%2Ftmp%2F{m}.txt",
        "..%00/{m}.txt",
        "....//....//{m}.txt",
    ],
    ids=["dotdot", "encoded-slash", "encoded-dots", "backslash", "absolute", "encoded-absolute",
         "nul", "dots-doubled"],
)
async def test_http_url_names_stay_in_the_folder(central: CentralSystem, suffix: str) -> None:
    marker = f"escape-{secrets.token_hex(4)}"
    slot = central.uploads.open("PATH-HTTP", 1)
    target = urlsplit(slot.http_location).path + suffix.format(m=marker)
    status, body = await _raw_put(central.http.port, target, LOG)
    assert status == 201, body
    path = _check_contained(central, slot, marker)
    assert body["filename"] == path.name


@pytest.mark.parametrize(
    "name", ["../../{m}.txt", "/tmp/{m}.txt", "..\\..\\{m}.txt", "C:\\Windows\\{m}.txt", ".."],
    ids=["dotdot", "absolute", "backslash", "drive", "only-dots"],
)
async def test_multipart_and_disposition_names_stay_in_the_folder(
    central: CentralSystem, name: str
) -> None:
    marker = f"escape-{secrets.token_hex(4)}"
    filename = name.format(m=marker)
    post_slot = central.uploads.open("PATH-FORM", 1)
    put_slot = central.uploads.open("PATH-FORM", 2)
    async with httpx.AsyncClient(timeout=10.0) as http:
        posted = await http.post(post_slot.http_location,
                                 files={"file": (filename, LOG, "text/plain")})
        put = await http.put(put_slot.http_location, content=LOG, headers={
            "content-disposition": f'attachment; filename="{filename}"'})
    assert posted.status_code == 201 and put.status_code == 201
    for slot in (post_slot, put_slot):
        _check_contained(central, slot, marker)


async def test_station_ids_stay_in_the_folder(central: CentralSystem) -> None:
    root = _uploads_root(central).resolve()
    for n, station_id in enumerate(["../../etc", "/tmp/x", "..", "a/../../b", "C:\\x"]):
        slot = central.uploads.open(station_id, n)
        async with httpx.AsyncClient(timeout=10.0) as http:
            assert (await http.put(slot.http_location, content=LOG)).status_code == 201
        assert slot.result is not None
        assert slot.result.path.resolve().parent.parent == root


def _ftp(slot: UploadSlot, commands: list[str]) -> list[str]:
    """Log in and run ``STOR name`` (with ``LOG``) or other commands; the replies."""
    return ftp_commands(slot, commands, LOG)


@pytest.mark.parametrize(
    "name", ["../../{m}.txt", "/tmp/{m}.txt", "..\\..\\{m}.txt", "%2e%2e%2f{m}.txt"],
    ids=["dotdot", "absolute", "backslash", "encoded"],
)
async def test_ftp_names_stay_in_the_folder(central: CentralSystem, name: str) -> None:
    marker = f"escape-{secrets.token_hex(4)}"
    slot = central.uploads.open("PATH-FTP", 1)
    replies = await asyncio.to_thread(
        _ftp, slot, ["CWD ..", "CWD ../..", "CDUP", "CWD /", f"STOR {name.format(m=marker)}"])
    assert [r[:3] for r in replies] == ["550", "550", "550", "250", "226"], replies
    _check_contained(central, slot, marker)
