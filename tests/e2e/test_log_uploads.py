"""Log uploads end to end: the server opens a one-time upload slot, a simulated charger gets
the location in GetDiagnostics (1.6) or GetLog (2.0.1) and uploads over HTTP or FTP, and the
file lands in the data folder with its progress notifications recorded."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from csms.app import CentralSystem
from diagnostics.commands import RequestLog
from simulators import Station201
from tests.e2e.helpers import STATIONS


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
@pytest.mark.parametrize("protocol", ["http", "ftp"])
async def test_charger_uploads_its_log(
    central: CentralSystem, version: str, protocol: str
) -> None:
    station_id = f"UP-{protocol}-{version}"
    slot = central.uploads.open(station_id, 11)
    scenario = f"log-upload-{protocol}"
    async with STATIONS[version](station_id, central.ocpp_url, scenario=scenario):
        outcome = await central.execute(
            station_id, RequestLog(location=slot.location(protocol), request_id=11)
        )
        assert outcome.ok, outcome
        uploaded = await asyncio.wait_for(central.uploads.registry.completed(slot), 10)
        # the final status notification follows the upload (polled: the machine may be busy)
        for _ in range(200):
            if await _log_statuses(central, station_id) == ["Uploading", "Uploaded"]:
                break
            await asyncio.sleep(0.05)
    assert uploaded.station_id == station_id and uploaded.protocol == protocol
    assert uploaded.path.is_relative_to(central.settings.data_dir / "uploads")
    content = uploaded.path.read_bytes()
    assert hashlib.sha256(content).hexdigest() == uploaded.sha256
    assert b"ERROR" in content or b"error" in content.lower()
    statuses = await _log_statuses(central, station_id)
    assert statuses[0] == "Uploading" and statuses[-1] == "Uploaded", statuses


async def _log_statuses(central: CentralSystem, station_id: str) -> list[str | None]:
    """The LogStatus codes recorded for the station, oldest first."""
    return [e.code for e in reversed(await central.store.events(station_id, "LogStatus"))]


async def test_wrong_protocol_upload_fails_and_slot_stays_open(central: CentralSystem) -> None:
    slot = central.uploads.open("UP-WRONG", 12)
    async with Station201("UP-WRONG", central.ocpp_url, scenario="log-upload-ftp"):
        outcome = await central.execute(
            "UP-WRONG", RequestLog(location=slot.location("http"), request_id=12)
        )
        assert outcome.ok
        await asyncio.sleep(0.5)
    statuses = [e.code for e in await central.store.events("UP-WRONG", "LogStatus")]
    assert statuses and statuses[0] == "UploadFailed"
    assert slot.result is None
