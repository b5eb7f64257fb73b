"""Driver report fixtures: a central system (API, diagnostics at time scale 0.004) with the
report settings a test needs, an HTTP client, tokens, real images and a tracking poller."""

from __future__ import annotations

import asyncio
import io
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from PIL import Image

from csms.app import CentralSystem
from csms.bus import Notice, Topic
from csms.settings import ApiSettings
from tests.api.conftest import auth, create_token

TIME_SCALE = 0.004


@dataclass
class ReportsEnv:
    """A running central system, a client on its HTTP port, tokens, and the report notices
    published so far."""

    central: CentralSystem
    client: httpx.AsyncClient
    operator: dict[str, str]
    viewer: dict[str, str]
    notices: list[Notice]

    async def file(self, *, headers: dict[str, str] | None = None,
                   photos: list[tuple[str, bytes, str]] | None = None,
                   **fields: Any) -> httpx.Response:
        """POST a report: multipart when ``photos`` is given, else JSON."""
        if photos is None:
            return await self.client.post("/api/v1/reports", json=fields, headers=headers)
        data = {k: str(v) for k, v in fields.items() if v is not None}
        files = [("photos", photo) for photo in photos]
        return await self.client.post("/api/v1/reports", data=data, files=files,
                                      headers=headers)

    async def track(self, token: str) -> dict[str, Any]:
        response = await self.client.get(f"/api/v1/reports/track/{token}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def track_until(self, token: str, status: str, timeout: float = 20.0, *,
                          leaves: bool = False) -> dict[str, Any]:
        """Poll the tracking endpoint until the report is in ``status`` (``leaves``: until it
        is no longer in it)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            body = await self.track(token)
            if (body["status"] == status) != leaves:
                return body
            assert asyncio.get_running_loop().time() < deadline, (status, body)
            await asyncio.sleep(0.05)


StartReports = Callable[..., Awaitable[ReportsEnv]]


@pytest.fixture
async def start_reports(
    make_central: Callable[..., Awaitable[CentralSystem]],
) -> AsyncIterator[StartReports]:
    """``await start_reports(**api_settings)``: a central system with these ``api`` settings."""
    clients: list[httpx.AsyncClient] = []

    async def start(**api: Any) -> ReportsEnv:
        central = await make_central(diagnostics_time_scale=TIME_SCALE,
                                     settings={"api": ApiSettings(**api)})
        notices: list[Notice] = []
        central.bus.subscribe(lambda n: notices.append(n) if n.topic is Topic.REPORT else None)
        client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{central.http.port}",
                                   timeout=10.0)
        clients.append(client)
        operator = auth(await create_token(central.store, "operator"))
        viewer = auth(await create_token(central.store, "viewer"))
        return ReportsEnv(central, client, operator, viewer, notices)

    yield start
    for client in clients:
        await client.aclose()


def image_bytes(kind: str = "PNG", size: tuple[int, int] = (64, 48), *,
                noise: bool = False) -> bytes:
    """A real image made with Pillow (``noise``: random pixels, so it barely compresses)."""
    if noise:
        image = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
    else:
        image = Image.new("RGB", size, (200, 30, 30))
    buffer = io.BytesIO()
    image.save(buffer, format=kind)
    return buffer.getvalue()
