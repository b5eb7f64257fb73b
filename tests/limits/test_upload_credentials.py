"""Upload locations are good for one request (``uploads.max_attempts`` 1), by HTTP and FTP: a
second request with the same location is refused, logged and counted (``upload_token``), and a
charger asked for its log again gets a fresh location that works."""

from __future__ import annotations

import asyncio
import ftplib
from urllib.parse import urlsplit

import httpx
import pytest

from csms.app import CentralSystem
from csms.settings import UploadSettings
from csms.uploads import UploadSlot
from simulators import Station16, Station201
from tests.api.conftest import auth, create_token
from tests.conftest import MakeCentral
from tests.limits.conftest import JsonLogs, ftp_commands, refusals

LOG = b"2025-01-02 03:04:05 ERROR contactor welded\n" * 10
STATIONS = {"1.6": Station16, "2.0.1": Station201}


def _client(central: CentralSystem) -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=10.0)


def _ftp_session(slot: UploadSlot, names: list[str]) -> list[str]:
    """Log in with the slot's credentials and STOR ``LOG`` once per name; the replies."""
    return ftp_commands(slot, [f"STOR {name}" for name in names], LOG)


def _ftp_login(slot: UploadSlot) -> str:
    assert slot.ftp_location is not None
    location = urlsplit(slot.ftp_location)
    assert location.hostname and location.port and location.username and location.password
    with ftplib.FTP() as ftp:
        ftp.connect(location.hostname, location.port, timeout=5)
        try:
            return ftp.login(location.username, location.password)
        except ftplib.error_perm as exc:
            return str(exc)


@pytest.mark.parametrize("method", ["PUT", "POST"])
async def test_http_location_takes_one_request(
    central: CentralSystem, json_logs: JsonLogs, method: str
) -> None:
    slot = central.uploads.open("ONCE-HTTP", 1)
    async with _client(central) as http:
        first = await http.request(method, slot.http_location + "diag.log", content=LOG)
        assert first.status_code == 201, first.text
        for suffix in ("diag.log", "", "other.log"):
            again = await http.request(method, slot.http_location + suffix, content=LOG)
            assert again.status_code == 404
            assert again.json() == {"detail": "upload slot already used"}
    assert slot.result is not None and slot.result.path.read_bytes() == LOG
    assert await refusals(central, "upload_token") == 3
    logged = json_logs.lines("http_upload_refused")
    assert [line["reason"] for line in logged] == ["used"] * 3


async def test_a_failed_request_uses_the_location_up(make_central: MakeCentral) -> None:
    central = await make_central(settings={
        "uploads": UploadSettings(ftp_host="127.0.0.1", ftp_port=0, max_bytes=64)})
    slot = central.uploads.open("ONCE-FAILED", 1)
    async with _client(central) as http:
        assert (await http.put(slot.http_location, content=LOG)).status_code == 413
        retry = await http.put(slot.http_location, content=b"short\n")
    assert retry.status_code == 404 and retry.json() == {"detail": "upload slot closed"}
    assert slot.result is None
    assert await refusals(central, "upload_token") == 1


async def test_more_attempts_when_configured(make_central: MakeCentral) -> None:
    central = await make_central(settings={"uploads": UploadSettings(
        ftp_host="127.0.0.1", ftp_port=0, max_bytes=64, max_attempts=2)})
    slot = central.uploads.open("TWICE", 1)
    async with _client(central) as http:
        assert (await http.put(slot.http_location, content=LOG)).status_code == 413
        assert (await http.put(slot.http_location, content=b"short\n")).status_code == 201
        assert (await http.put(slot.http_location, content=b"short\n")).status_code == 404


async def test_unknown_tokens_are_refused_and_counted(central: CentralSystem) -> None:
    base = f"http://127.0.0.1:{central.http.port}/uploads"
    async with _client(central) as http:
        for token in ("A" * 32, "short", "..%2F..%2Fetc"):
            refused = await http.put(f"{base}/{token}/x.log", content=LOG)
            assert refused.status_code == 404
            assert refused.json() == {"detail": "unknown upload token"}
    assert await refusals(central, "upload_token") == 3


async def test_ftp_credentials_take_one_upload(
    central: CentralSystem, json_logs: JsonLogs
) -> None:
    slot = central.uploads.open("ONCE-FTP", 1)
    replies = await asyncio.to_thread(_ftp_session, slot, ["diag.log", "again.log"])
    assert replies[0].startswith("226")
    assert replies[1] == "550 upload slot already used"
    login = await asyncio.to_thread(_ftp_login, slot)
    assert login.startswith("530")
    assert slot.result is not None and slot.result.protocol == "ftp"
    assert await refusals(central, "upload_token") == 2
    assert [line["reason"] for line in json_logs.lines("ftp_upload_refused")] == ["used"]
    assert len(json_logs.lines("ftp_login_refused")) == 1


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
@pytest.mark.parametrize("protocol", ["http", "ftp"])
async def test_asking_again_gives_a_fresh_location(
    central: CentralSystem, version: str, protocol: str
) -> None:
    station_id = f"AGAIN-{protocol}-{version}"
    token = await create_token(central.store, "operator")
    async with (
        STATIONS[version](station_id, central.ocpp_url) as station,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{central.http.port}",
                          timeout=10.0) as http,
    ):
        for n in (1, 2):
            asked = await http.post(f"/api/v1/stations/{station_id}/commands/get-log",
                                    json={"protocol": protocol}, headers=auth(token))
            assert asked.status_code == 200, asked.text
            for _ in range(200):
                if len(station.uploads) == n:
                    break
                await asyncio.sleep(0.05)
        assert [ok for _, ok in station.uploads] == [True, True]
        first, second = (target for target, _ in station.uploads)
        assert first != second
        if protocol == "http":
            replay = await http.put(first, content=LOG)
            assert replay.status_code == 404
    stored = sorted(p.name for p in (central.settings.data_dir / "uploads" / station_id).iterdir())
    assert len(stored) == 2
