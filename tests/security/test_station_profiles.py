"""Per-station security profiles in the store and from ``csms station`` (both databases)."""

from __future__ import annotations

import asyncio

import pytest
from websockets.exceptions import InvalidStatus

from csms.app import CentralSystem
from csms.cli import main
from csms.store import Store
from tests.e2e.rawclient import call
from tests.security.clients import open_charger, wss_url
from tests.security.pki import Pki


async def test_set_and_read_profiles(store: Store) -> None:
    assert not await store.set_security_profile("NOBODY", 2)  # no station is made
    assert await store.security_profiles_of(["NOBODY"]) == {}
    await store.ensure_station("A")
    await store.ensure_station("B")
    assert await store.security_profiles_of(["A", "B", "C"]) == {"A": None, "B": None}
    assert await store.set_security_profile("A", 3)
    assert await store.set_security_profile("B", 0)
    assert await store.security_profiles_of(["A", "B"]) == {"A": 3, "B": 0}
    assert await store.set_security_profile("A", None)
    assert await store.security_profiles_of(["A"]) == {"A": None}
    with pytest.raises(ValueError, match="0 to 3"):
        await store.set_security_profile("A", 4)
    assert await store.security_profiles_of([]) == {}


async def _cli(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


async def test_cli_sets_the_profile_the_handshake_enforces(
    tls_central: CentralSystem, pki: Pki, capsys: pytest.CaptureFixture[str]
) -> None:
    url = tls_central.settings.database_url
    assert await _cli("station", "add", "CLI-3", "--profile", "3", "--database-url", url) == 0
    assert "security profile 3" in capsys.readouterr().out
    assert await tls_central.store.security_profiles_of(["CLI-3"]) == {"CLI-3": 3}

    with pytest.raises(InvalidStatus) as refused:
        await open_charger(tls_central.ocpp_url, "CLI-3")
    assert refused.value.response.status_code == 403
    ws = await open_charger(wss_url(tls_central), "CLI-3",
                            context=pki.client_context(pki.charger("CLI-3")))
    try:
        assert (await call(ws, "Heartbeat", {}))[0] == 3
    finally:
        await ws.close()

    assert await _cli("station", "set-profile", "CLI-3", "default", "--database-url", url) == 0
    assert "server default" in capsys.readouterr().out
    assert await tls_central.store.security_profiles_of(["CLI-3"]) == {"CLI-3": None}
    ws = await open_charger(tls_central.ocpp_url, "CLI-3")  # default 1, no password
    await ws.close()

    assert await _cli("station", "set-profile", "CLI-3", "2", "--database-url", url) == 0
    assert await tls_central.store.security_profiles_of(["CLI-3"]) == {"CLI-3": 2}
    assert await _cli("station", "set-profile", "GHOST", "2", "--database-url", url) == 1
    assert "no station GHOST" in capsys.readouterr().err
