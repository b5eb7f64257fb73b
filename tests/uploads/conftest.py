"""Upload fixtures: the upload service on a controllable clock, and the real HTTP (uvicorn on
loopback port 0) and FTP (aioftp on loopback port 0) servers in the test's event loop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from csms.http import HttpServer, create_app
from csms.uploads import (
    UploadedLog,
    UploadEndpoints,
    UploadRegistry,
    Uploads,
    UploadStorage,
)
from csms.uploads.ftp import FtpUploadServer

MAX_BYTES = 4096


@dataclass
class FakeClock:
    now: datetime = field(default_factory=lambda: datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def upload_root(tmp_path: Path) -> Path:
    return tmp_path / "data" / "uploads"


@pytest.fixture
def received() -> list[UploadedLog]:
    return []


@pytest.fixture
def uploads(upload_root: Path, clock: FakeClock, received: list[UploadedLog]) -> Uploads:
    """Uploads with a 4 KiB limit, a 60 s slot lifetime, and every completed upload recorded
    in ``received`` (through an async listener)."""

    async def listener(uploaded: UploadedLog) -> None:
        received.append(uploaded)

    registry = UploadRegistry(UploadEndpoints(public_host="127.0.0.1"), on_upload=listener)
    storage = UploadStorage(upload_root, max_bytes=MAX_BYTES, clock=clock)
    return Uploads(registry, storage, slot_ttl=60, clock=clock)


@pytest.fixture
async def http_server(uploads: Uploads) -> AsyncIterator[HttpServer]:
    server = HttpServer(create_app(uploads=uploads), host="127.0.0.1", port=0)
    await server.start()
    uploads.registry.endpoints.http_port = server.port
    yield server
    await server.stop()
    await uploads.registry.aclose()


@pytest.fixture
async def client(http_server: HttpServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=http_server.url, timeout=10) as client:
        yield client


@pytest.fixture
async def ftp_server(uploads: Uploads) -> AsyncIterator[FtpUploadServer]:
    server = FtpUploadServer(uploads, host="127.0.0.1", port=0, data_connect_timeout=5)
    await server.start()
    uploads.registry.endpoints.ftp_port = server.port
    yield server
    await server.stop()
    await uploads.registry.aclose()


def stored_files(root: Path) -> list[Path]:
    """Every file under ``root``, temporary ones included."""
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []
