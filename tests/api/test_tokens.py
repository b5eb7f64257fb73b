"""API tokens: the CLI creates them (stored hashed), roles gate the API."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from csms.api import tokens
from csms.app import CentralSystem
from csms.cli import main
from tests.api.conftest import auth, create_token


def test_token_format_and_hash() -> None:
    new = tokens.generate()
    parsed = tokens.parse(new.value)
    assert parsed is not None and parsed[0] == new.token_id
    assert tokens.matches(parsed[1], new.secret_hash)
    assert not tokens.matches(parsed[1] + "x", new.secret_hash)
    assert new.secret_hash == hashlib.sha256(parsed[1].encode()).hexdigest()
    assert parsed[1] not in new.secret_hash
    for bad in ("", "csms_", "csms_abc", "csms_.x", "other_abc.def", "csms_" + "a" * 300):
        assert tokens.parse(bad) is None


def test_roles_are_ordered() -> None:
    viewer, operator, admin = tokens.Role.VIEWER, tokens.Role.OPERATOR, tokens.Role.ADMIN
    assert admin.allows(operator) and admin.allows(viewer) and operator.allows(viewer)
    assert not viewer.allows(operator) and not operator.allows(admin)


async def test_cli_creates_lists_and_revokes(
    api_central: CentralSystem, client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    url = api_central.settings.database_url
    assert await _run(["token", "create", "--name", "ops-desk", "--role", "operator",
                       "--database-url", url]) == 0
    out = capsys.readouterr().out
    value = out.strip().splitlines()[-1]
    parsed = tokens.parse(value)
    assert parsed is not None, out
    token_id, secret = parsed
    record = await api_central.store.get_token(token_id)
    assert record is not None and record.role == "operator" and record.name == "ops-desk"
    assert secret not in record.secret_hash  # only the hash is stored

    response = await client.get("/api/v1/stations", headers=auth(value))
    assert response.status_code == 200

    assert await _run(["token", "list", "--database-url", url]) == 0
    listing = capsys.readouterr().out
    assert token_id in listing and "ops-desk" in listing and secret not in listing

    assert await _run(["token", "revoke", token_id, "--database-url", url]) == 0
    assert await _run(["token", "revoke", token_id, "--database-url", url]) == 1
    record = await api_central.store.get_token(token_id)
    assert record is not None and record.revoked_at is not None


async def _run(argv: list[str]) -> int:
    import asyncio

    return await asyncio.to_thread(main, argv)


async def test_missing_wrong_and_insufficient_tokens(
    api_central: CentralSystem, client: httpx.AsyncClient
) -> None:
    response = await client.get("/api/v1/stations")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "bearer" in response.json()["detail"].lower()

    assert (await client.get("/api/v1/stations",
                             headers={"Authorization": "Basic abc"})).status_code == 401
    assert (await client.get("/api/v1/stations",
                             headers=auth("csms_nope.nope"))).status_code == 401
    viewer = await create_token(api_central.store, "viewer")
    token_id, _ = tokens.parse(viewer) or ("", "")
    wrong_secret = f"csms_{token_id}.not-the-secret"
    assert (await client.get("/api/v1/stations", headers=auth(wrong_secret))).status_code == 401

    assert (await client.get("/api/v1/stations", headers=auth(viewer))).status_code == 200
    denied = await client.post("/api/v1/stations/CP1/commands/soft-reset", headers=auth(viewer),
                               json={})
    assert denied.status_code == 403
    assert "operator" in denied.json()["detail"]


async def test_revoked_token_is_refused(api_central: CentralSystem,
                                        client: httpx.AsyncClient) -> None:
    value = await create_token(api_central.store, "admin")
    token_id, _ = tokens.parse(value) or ("", "")
    assert await api_central.store.revoke_token(token_id)
    response = await client.get("/api/v1/stations", headers=auth(value))
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]
