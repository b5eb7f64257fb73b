"""TLS on the HTTP side: API, metrics and uploads over HTTPS with the configured certificate."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import MakeCentral
from tests.security.conftest import https_settings
from tests.security.pki import Pki


async def test_http_side_serves_https(make_central: MakeCentral, pki: Pki) -> None:
    central = await make_central(settings=https_settings(pki))
    assert central.http.url == f"https://127.0.0.1:{central.http.port}"
    async with httpx.AsyncClient(verify=pki.client_context(), timeout=5) as client:
        health = await client.get(f"{central.http.url}/healthz")
        assert health.status_code == 200
        assert (await client.get(f"{central.http.url}/metrics")).status_code == 200
    async with httpx.AsyncClient(timeout=5) as client:
        with pytest.raises(httpx.ConnectError):  # our test CA is not trusted by default
            await client.get(f"{central.http.url}/healthz")
        with pytest.raises(httpx.HTTPError):  # plain HTTP to the TLS port
            await client.get(f"http://127.0.0.1:{central.http.port}/healthz")
