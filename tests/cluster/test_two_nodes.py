"""Two central systems on one PostgreSQL database and the real Mosquitto: one leads the
diagnostics, commands reach chargers held by the other node, notices are shared."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest

from csms.app import CentralSystem
from csms.bus import Notice, Topic
from csms.settings import ClusterSettings, MqttSettings
from diagnostics.commands import TriggerKind, TriggerMessage
from tests.api.conftest import auth, create_token
from tests.conftest import MakeCentral
from tests.e2e.helpers import STATIONS, until

pytestmark = pytest.mark.parametrize("db_backend", ["postgres"], indirect=True)

TIME_SCALE = 0.004


@pytest.fixture
async def nodes(make_central: MakeCentral, tmp_path: Path) -> tuple[CentralSystem, ...]:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    started = []
    for name in ("node-a", "node-b"):
        started.append(await make_central(
            diagnostics_time_scale=TIME_SCALE,
            settings={
                "node_id": name, "data_dir": tmp_path / name,
                "mqtt": MqttSettings(topic_prefix=prefix, reconnect_initial=0.1),
                "cluster": ClusterSettings(enabled=True, lease_seconds=3, renew_seconds=0.3),
            },
        ))
    a, b = started
    await until(lambda: a.cluster is not None and a.cluster.leader, timeout=5)
    assert b.cluster is not None and not b.cluster.leader
    return a, b


async def test_command_through_node_a_reaches_a_charger_on_node_b(
    nodes: tuple[CentralSystem, CentralSystem],
) -> None:
    a, b = nodes
    token = await create_token(a.store, "operator")
    async with STATIONS["2.0.1"]("ON-B", b.ocpp_url) as station, \
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{a.http.port}") as client:
        await until(lambda: "ON-B" in b.registry, timeout=5)
        response = await client.post("/api/v1/stations/ON-B/commands/soft-reset",
                                     headers=auth(token), json={})
        assert response.status_code == 200, response.text
        assert response.json()["result"] == "accepted"
        await until(lambda: "Reset" in [c.action for c in station.received], timeout=5)
        # and from B towards a charger held by A
    async with STATIONS["1.6"]("ON-A", a.ocpp_url) as station:
        outcome = await b.execute("ON-A", TriggerMessage(TriggerKind.HEARTBEAT))
        assert outcome.status.value == "accepted"
        assert "TriggerMessage" in [c.action for c in station.received]


async def test_fault_on_the_follower_is_fixed_by_the_leader_and_seen_everywhere(
    nodes: tuple[CentralSystem, CentralSystem],
) -> None:
    a, b = nodes
    seen_on_b: list[Notice] = []
    b.bus.subscribe(seen_on_b.append)
    async with STATIONS["1.6"]("FIX-B", b.ocpp_url, scenario="fixed-by-unlock",
                               heartbeat_interval=1.0) as station:
        assert a.diagnostics is not None
        await until(lambda: any(r.station_id == "FIX-B" and r.outcome == "fixed"
                                for r in a.diagnostics.finished_runs), timeout=20)
        assert "UnlockConnector" in [c.action for c in station.received]
    runs = await b.store.runs("FIX-B")
    assert [r.outcome for r in runs] == ["fixed"] and runs[0].node == "node-a"
    # the leader's run notices reach B over the broker, a moment after the run finished on A

    def remote_runs() -> list[Notice]:
        return [n for n in seen_on_b if n.topic is Topic.RUN and n.origin == "node-a"]

    await until(lambda: bool(remote_runs()) and remote_runs()[-1].kind == "finished",
                timeout=5)
    # B's own station notices are local on B
    assert any(n.topic is Topic.STATION and n.origin is None for n in seen_on_b)
    # the follower never ran an engine
    assert b.diagnostics is not None and b.diagnostics.engine is None


async def test_ticket_transition_on_the_follower_goes_to_the_leader(
    nodes: tuple[CentralSystem, CentralSystem],
) -> None:
    a, b = nodes
    token = await create_token(b.store, "operator")
    async with STATIONS["2.0.1"]("NEVER-B", b.ocpp_url, scenario="never-fixed",
                                 heartbeat_interval=1.0):
        deadline = asyncio.get_running_loop().time() + 25
        while not await b.store.tickets("NEVER-B"):
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.2)
    (ticket,) = await b.store.tickets("NEVER-B")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{b.http.port}") as client:
        acked = await client.post(f"/api/v1/tickets/{ticket.ticket_id}/acknowledge",
                                  headers=auth(token), json={"note": "via B"})
        assert acked.status_code == 200, acked.text
        assert acked.json()["status"] == "acknowledged"
        wrong = await client.post(f"/api/v1/tickets/{ticket.ticket_id}/reopen",
                                  headers=auth(token))
        assert wrong.status_code == 409
    assert a.diagnostics is not None and a.diagnostics.engine is not None
    led = a.diagnostics.engine.ticket(ticket.ticket_id)
    assert led is not None and led.status.value == "acknowledged"


async def test_leader_stopping_hands_over(nodes: tuple[CentralSystem, CentralSystem]) -> None:
    a, b = nodes
    assert a.cluster is not None and b.cluster is not None
    await a.stop()
    await until(lambda: b.cluster is not None and b.cluster.leader, timeout=5)
    assert b.diagnostics is not None and b.diagnostics.engine is not None
