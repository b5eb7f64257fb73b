"""Dashboard and live stream fixtures: the API fixtures (a central system with its HTTP API at
diagnostics time scale 0.004, an ``httpx`` client, tokens per role) and a viewer token."""

from __future__ import annotations

import pytest

from csms.app import CentralSystem
from tests.api.conftest import api_central, client, create_token, tokens_by_role

__all__ = ["api_central", "client", "tokens_by_role", "viewer_token"]


@pytest.fixture
async def viewer_token(api_central: CentralSystem) -> str:
    """A token with the viewer role (what the dashboard needs)."""
    return await create_token(api_central.store, "viewer", name="dashboard")
