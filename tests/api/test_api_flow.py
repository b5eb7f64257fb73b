"""The REST API against the real central system with simulated chargers: stations, runs,
tickets and their transitions, stored logs, on both databases."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from csms.app import CentralSystem
from tests.api.conftest import auth, create_token
from tests.e2e.helpers import STATIONS


async def _poll(client: httpx.AsyncClient, url: str, headers: dict[str, str],
                check: Any, timeout: float = 20.0) -> Any:
    """GET ``url`` until ``check(json)`` is truthy; return the JSON."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        response = await client.get(url, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        if check(body):
            return body
        assert asyncio.get_running_loop().time() < deadline, f"{url}: {body}"
        await asyncio.sleep(0.1)


async def test_stations_fleet_and_history(
    api_central: CentralSystem, client: httpx.AsyncClient, tokens_by_role: dict[str, str]
) -> None:
    viewer = auth(tokens_by_role["viewer"])
    await api_central.store.set_station_details("OFF-1", site="depot", owner="acme")
    async with STATIONS["1.6"]("API-16", api_central.ocpp_url) as s16, \
            STATIONS["2.0.1"]("API-201", api_central.ocpp_url):
        await s16.set_status(1, "Faulted", error_code="GroundFailure")
        body = await _poll(client, "/api/v1/stations?state=faulted", viewer,
                           lambda b: len(b["items"]) == 1)
        (faulted,) = body["items"]
        assert faulted["id"] == "API-16" and faulted["connected"] is True
        assert faulted["protocol"] == "1.6" and faulted["vendor"]
        assert any(c["status"] == "Faulted" and c["error_code"] == "GroundFailure"
                   for c in faulted["connectors"])

        listing = (await client.get("/api/v1/stations", headers=viewer)).json()
        assert [s["id"] for s in listing["items"]] == ["API-16", "API-201", "OFF-1"]
        assert listing["total"] == 3
        states = {s["id"]: s["state"] for s in listing["items"]}
        assert states == {"API-16": "faulted", "API-201": "available", "OFF-1": "offline"}
        page = (await client.get("/api/v1/stations?limit=1&offset=1", headers=viewer)).json()
        assert [s["id"] for s in page["items"]] == ["API-201"] and page["total"] == 3
        assert (await client.get("/api/v1/stations?online=false&site=depot",
                                 headers=viewer)).json()["total"] == 1
        assert (await client.get("/api/v1/stations?q=201", headers=viewer)).json()["total"] == 1

        fleet = (await client.get("/api/v1/fleet", headers=viewer)).json()
        assert (fleet["stations"], fleet["online"], fleet["offline"], fleet["faulted"]) == (
            3, 2, 1, 1)
        assert set(fleet["open_tickets"]) == {"P1", "P2", "P3", "P4"}

        detail = (await client.get("/api/v1/stations/API-201", headers=viewer)).json()
        assert detail["protocol"] == "2.0.1" and detail["firmware_version"]
        assert detail["last_seen_at"] and detail["connectors"]

        history = (await client.get("/api/v1/stations/API-16/status-history",
                                    headers=viewer)).json()
        assert history[0]["status"] == "Faulted"
        connections = (await client.get("/api/v1/stations/API-16/connections",
                                        headers=viewer)).json()
        assert connections[0]["kind"] == "connected"
        events = (await client.get("/api/v1/stations/API-16/events", headers=viewer)).json()
        assert any(e["code"] == "GroundFailure" for e in events)
        assert (await client.get("/api/v1/stations/API-16/transactions",
                                 headers=viewer)).json() == []

    missing = await client.get("/api/v1/stations/NOPE", headers=viewer)
    assert missing.status_code == 404 and "NOPE" in missing.json()["detail"]
    bad = await client.get("/api/v1/stations?state=weird", headers=viewer)
    assert bad.status_code == 422
    too_big = await client.get("/api/v1/stations?limit=100000", headers=viewer)
    assert too_big.status_code == 422


async def test_runs_show_steps_and_tickets_move_through_their_lifecycle(
    api_central: CentralSystem, client: httpx.AsyncClient, tokens_by_role: dict[str, str]
) -> None:
    viewer = auth(tokens_by_role["viewer"])
    operator = auth(tokens_by_role["operator"])
    async with STATIONS["2.0.1"]("NEVER-API", api_central.ocpp_url, scenario="never-fixed"):
        running = await _poll(client, "/api/v1/runs?active=true&station_id=NEVER-API", viewer,
                              lambda b: len(b["items"]) >= 1 and b["items"][0]["current_step"])
        assert running["items"][0]["outcome"] is None
        tickets = await _poll(client, "/api/v1/tickets?station_id=NEVER-API", viewer,
                              lambda b: len(b["items"]) == 1)
    (ticket,) = tickets["items"]
    assert ticket["status"] == "open" and ticket["priority"] in {"P2", "P3"}
    assert ticket["sla"]["response_by"] and ticket["breaches"] == []
    ticket_id = ticket["ticket_id"]

    detail = (await client.get(f"/api/v1/tickets/{ticket_id}", headers=viewer)).json()
    tried = [step["action"] for step in detail["steps"]]
    assert {"unlock", "soft_reset", "hard_reset"} <= set(tried)
    assert all(step["result"] for step in detail["steps"])
    assert detail["timeline"] and "CX001" in detail["vendor_codes"]

    run = (await client.get(f"/api/v1/runs/{ticket['run_id']}", headers=viewer)).json()
    assert run["ticket_id"] == ticket_id and run["phase"] == "ticketed"
    assert [s["action"] for s in run["steps"]][:len(tried)] == tried

    # filters
    for query, expected in [("priority=" + ticket["priority"], 1), ("status=open", 1),
                            ("status=closed", 0), ("breached=true", 0), ("active=true", 1)]:
        body = (await client.get(f"/api/v1/tickets?{query}", headers=viewer)).json()
        assert body["total"] == expected, query

    # transitions: viewer refused, operator allowed, lifecycle enforced
    denied = await client.post(f"/api/v1/tickets/{ticket_id}/acknowledge", headers=viewer)
    assert denied.status_code == 403
    acked = await client.post(f"/api/v1/tickets/{ticket_id}/acknowledge", headers=operator,
                              json={"note": "looking at it"})
    assert acked.status_code == 200, acked.text
    assert acked.json()["status"] == "acknowledged"
    assert acked.json()["notes"][-1]["text"] == "looking at it"
    assert "test-operator" in acked.json()["notes"][-1]["by"]
    assert (await client.post(f"/api/v1/tickets/{ticket_id}/dispatch",
                              headers=operator)).json()["status"] == "dispatched"
    wrong = await client.post(f"/api/v1/tickets/{ticket_id}/acknowledge", headers=operator)
    assert wrong.status_code == 409 and "not allowed" in wrong.json()["detail"]
    assert (await client.post(f"/api/v1/tickets/{ticket_id}/resolve", headers=operator,
                              json={"note": "cable replaced"})).json()["status"] == "resolved"
    closed = await client.post(f"/api/v1/tickets/{ticket_id}/close", headers=operator)
    assert closed.json()["status"] == "closed"
    again = await client.post(f"/api/v1/tickets/{ticket_id}/resolve", headers=operator)
    assert again.status_code == 409 and "closed" in again.json()["detail"]
    stored = (await client.get(f"/api/v1/tickets/{ticket_id}", headers=viewer)).json()
    assert stored["status"] == "closed"
    assert [n.get("status") for n in stored["notes"] if n.get("status")][-4:] == [
        "acknowledged", "dispatched", "resolved", "closed"]
    finished = await _poll(client, f"/api/v1/runs/{ticket['run_id']}", viewer,
                           lambda b: b["outcome"] is not None)
    assert finished["outcome"] == "resolved_by_operator" or finished["outcome"]
    unknown = await client.post("/api/v1/tickets/T-NOPE/close", headers=operator)
    assert unknown.status_code == 404
    bad_body = await client.post(f"/api/v1/tickets/{ticket_id}/close", headers=operator,
                                 json={"note": "x", "extra": 1})
    assert bad_body.status_code == 422


async def test_fixed_run_is_listed_with_every_step_result(
    api_central: CentralSystem, client: httpx.AsyncClient
) -> None:
    viewer = auth(await create_token(api_central.store, "viewer"))
    async with STATIONS["1.6"]("UNLOCK-API", api_central.ocpp_url, scenario="fixed-by-unlock"):
        body = await _poll(client, "/api/v1/runs?active=false&station_id=UNLOCK-API", viewer,
                           lambda b: len(b["items"]) >= 1)
    (run,) = body["items"]
    assert run["outcome"] == "fixed" and run["ticket_id"] is None
    unlock = [s for s in run["steps"] if s["action"] == "unlock"]
    assert unlock and unlock[-1]["result"] == "verified"
    fleet = (await client.get("/api/v1/fleet", headers=viewer)).json()
    assert fleet["fixed_remotely"] == 1 and fleet["remote_fix_share"] == 1.0
    assert (await client.get("/api/v1/runs/NOPE", headers=viewer)).status_code == 404


async def test_ticket_carries_the_station_details_registered_while_running(
    api_central: CentralSystem, client: httpx.AsyncClient
) -> None:
    viewer = auth(await create_token(api_central.store, "viewer"))
    await api_central.store.set_station_details("SITE-1", site="depot-7", owner="acme",
                                                location="Bay 3")
    async with STATIONS["1.6"]("SITE-1", api_central.ocpp_url, scenario="safety-fault"):
        body = await _poll(client, "/api/v1/tickets?station_id=SITE-1", viewer,
                           lambda b: len(b["items"]) == 1)
    detail = (await client.get(f"/api/v1/tickets/{body['items'][0]['ticket_id']}",
                               headers=viewer)).json()
    assert detail["priority"] == "P1"
    assert detail["station"]["site"] == "depot-7" and detail["station"]["owner"] == "acme"
    assert detail["station"]["location"] == "Bay 3"
