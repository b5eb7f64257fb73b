"""API test fixtures: a central system on port 0 with its HTTP API, tokens per role, and an
``httpx`` client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from csms.api import tokens
from csms.app import CentralSystem
from csms.store import Store


async def create_token(store: Store, role: str, name: str | None = None) -> str:
    """A new API token of ``role``; returns its value (``csms_<id>.<secret>``)."""
    new = tokens.generate()
    await store.create_token(token_id=new.token_id, name=name or f"test-{role}", role=role,
                             secret_hash=new.secret_hash)
    return new.value


def auth(token: str) -> dict[str, str]:
    """The Authorization header for ``token``."""
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def api_central(
    make_central: Callable[..., Awaitable[CentralSystem]],
) -> CentralSystem:
    """A running central system (OCPP, HTTP with the API, diagnostics at time scale 0.004)."""
    return await make_central(diagnostics_time_scale=0.004)


@pytest.fixture
async def client(api_central: CentralSystem) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the central system's HTTP port."""
    base = f"http://127.0.0.1:{api_central.http.port}"
    async with httpx.AsyncClient(base_url=base, timeout=10.0) as http:
        yield http


@pytest.fixture
async def tokens_by_role(api_central: CentralSystem) -> dict[str, str]:
    """One token per role: ``{"viewer": ..., "operator": ..., "admin": ...}``."""
    return {role: await create_token(api_central.store, role)
            for role in ("viewer", "operator", "admin")}


def headers_for(tokens_by_role: dict[str, str], role: str) -> dict[str, Any]:
    """Shorthand: the Authorization header of the token of ``role``."""
    return auth(tokens_by_role[role])
