"""Operator commands over the API reach the real (simulated) charger, through the engine's
safety rules; stored logs can be downloaded."""

from __future__ import annotations

import asyncio

import httpx

from csms.app import CentralSystem
from csms.bus import Notice, Topic
from tests.api.conftest import auth
from tests.e2e.helpers import STATIONS, until


async def test_commands_reach_the_charger_and_are_audited(
    api_central: CentralSystem, client: httpx.AsyncClient, tokens_by_role: dict[str, str]
) -> None:
    operator = auth(tokens_by_role["operator"])
    seen: list[Notice] = []
    api_central.bus.subscribe(seen.append)
    base = "/api/v1/stations/CMD-201/commands"
    async with STATIONS["2.0.1"]("CMD-201", api_central.ocpp_url) as station:
        response = await client.post(f"{base}/trigger", headers=operator,
                                     json={"message": "StatusNotification", "evse_id": 1,
                                           "connector_id": 1})
        assert response.status_code == 200, response.text
        assert response.json()["result"] == "accepted"
        assert (await client.post(f"{base}/unlock", headers=operator,
                                  json={"connector_id": 1, "evse_id": 1})).json()["result"] \
            in {"accepted", "rejected"}
        off = await client.post(f"{base}/availability", headers=operator,
                                json={"operative": False, "evse_id": 1})
        assert off.json()["result"] == "accepted"
        reset = await client.post(f"{base}/soft-reset", headers=operator)
        assert reset.json()["result"] == "accepted"
        await until(lambda: "Reset" in [c.action for c in station.received], timeout=5)
        actions = [c.action for c in station.received]
        assert {"TriggerMessage", "UnlockConnector", "ChangeAvailability", "Reset"} <= set(
            actions)
    audited = [n for n in seen if n.topic is Topic.COMMAND and n.data["source"] == "operator"]
    assert [n.data["action"] for n in audited] == [
        "TriggerMessage", "UnlockConnector", "ChangeAvailability", "SoftReset"]
    assert all("test-operator" in n.data["by"] for n in audited)


async def test_safety_rules_refuse_with_a_reason(
    api_central: CentralSystem, client: httpx.AsyncClient, tokens_by_role: dict[str, str]
) -> None:
    operator = auth(tokens_by_role["operator"])
    async with STATIONS["1.6"]("LIVE-16", api_central.ocpp_url) as station:
        await station.start_session(1, "TAG-1")
        await asyncio.sleep(0.2)
        base = "/api/v1/stations/LIVE-16/commands"
        refused = await client.post(f"{base}/soft-reset", headers=operator, json={})
        assert refused.status_code == 409
        assert "session live" in refused.json()["detail"]
        assert "Reset" not in [c.action for c in station.received]
        unlock = await client.post(f"{base}/unlock", headers=operator, json={"connector_id": 1})
        assert unlock.status_code == 409
        forced = await client.post(f"{base}/soft-reset", headers=operator, json={"force": True})
        assert forced.status_code == 200 and forced.json()["result"] == "accepted"

    async with STATIONS["1.6"]("SAFE-16", api_central.ocpp_url,
                               scenario="safety-fault") as station:
        await until(lambda: any(r.station_id == "SAFE-16"
                                for r in (api_central.diagnostics.engine.runs()
                                          if api_central.diagnostics and
                                          api_central.diagnostics.engine else [])), timeout=10)
        base = "/api/v1/stations/SAFE-16/commands"
        refused = await client.post(f"{base}/hard-reset", headers=operator,
                                    json={"force": True})
        assert refused.status_code == 409 and "safety" in refused.json()["detail"]
        assert not [c for c in station.received if c.action == "Reset"]


async def test_errors_are_clear(
    api_central: CentralSystem, client: httpx.AsyncClient, tokens_by_role: dict[str, str]
) -> None:
    operator = auth(tokens_by_role["operator"])
    viewer = auth(tokens_by_role["viewer"])
    unknown = await client.post("/api/v1/stations/NOPE/commands/soft-reset", headers=operator)
    assert unknown.status_code == 404
    await api_central.store.ensure_station("GONE")
    offline = await client.post("/api/v1/stations/GONE/commands/soft-reset", headers=operator)
    assert offline.status_code == 409 and "not connected" in offline.json()["detail"]
    assert (await client.post("/api/v1/stations/GONE/commands/soft-reset",
                              headers=viewer)).status_code == 403
    bad = await client.post("/api/v1/stations/GONE/commands/trigger", headers=operator,
                            json={"message": "Coffee"})
    assert bad.status_code == 422 and "message" in bad.text
    extra = await client.post("/api/v1/stations/GONE/commands/unlock", headers=operator,
                              json={"connector_id": 1, "please": True})
    assert extra.status_code == 422
    assert (await client.post("/api/v1/stations/GONE/commands/unlock", headers=operator,
                              json={"connector_id": 0})).status_code == 422


async def test_get_log_and_download_and_diagnose_now(
    api_central: CentralSystem, client: httpx.AsyncClient, tokens_by_role: dict[str, str]
) -> None:
    operator = auth(tokens_by_role["operator"])
    viewer = auth(tokens_by_role["viewer"])
    async with STATIONS["1.6"]("LOG-16", api_central.ocpp_url):
        response = await client.post("/api/v1/stations/LOG-16/commands/get-log",
                                     headers=operator, json={"protocol": "http"})
        assert response.status_code == 200, response.text
        assert response.json()["result"] == "accepted"
        request_id = response.json()["request_id"]
        deadline = asyncio.get_running_loop().time() + 10
        while True:
            logs = (await client.get("/api/v1/logs?station_id=LOG-16", headers=viewer)).json()
            if logs["items"]:
                break
            assert asyncio.get_running_loop().time() < deadline, "no log stored"
            await asyncio.sleep(0.1)
        (stored,) = logs["items"]
        assert stored["request_id"] == request_id and stored["size"] > 0
        download = await client.get(stored["download_url"], headers=viewer)
        assert download.status_code == 200 and len(download.content) == stored["size"]
        assert "attachment" in download.headers["content-disposition"]
        import hashlib
        assert hashlib.sha256(download.content).hexdigest() == stored["sha256"]
        assert (await client.get(stored["download_url"])).status_code == 401

        queued = await client.post("/api/v1/stations/LOG-16/commands/diagnose",
                                   headers=operator, json={})
        assert queued.status_code == 202
        deadline = asyncio.get_running_loop().time() + 10
        while True:
            runs = (await client.get("/api/v1/runs?station_id=LOG-16", headers=viewer)).json()
            if runs["items"]:
                break
            assert asyncio.get_running_loop().time() < deadline, "no run started"
            await asyncio.sleep(0.1)
        assert runs["items"][0]["detection"] == "operator"
    assert (await client.get("/api/v1/logs/999999", headers=viewer)).status_code == 404
