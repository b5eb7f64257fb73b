"""``csms serve --workers 2``: two processes share the OCPP and HTTP ports as cluster nodes
on PostgreSQL and Mosquitto; chargers land on both, commands and uploads find their worker."""

from __future__ import annotations

import asyncio
import signal
import uuid
from pathlib import Path

import httpx
import pytest

from csms.store import Database, Store
from tests.api.conftest import auth, create_token
from tests.e2e.helpers import STATIONS
from tests.e2e.process import ServerProcess, console_script, run_command

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.mark.parametrize("db_backend", ["postgres"], indirect=True)
async def test_two_workers_share_the_ports(empty_database_url: str, tmp_path: Path) -> None:
    server = ServerProcess(empty_database_url, tmp_path / "server", "--workers", "2", env={
        "CSMS_NODE_ID": "box",
        "CSMS_DIAGNOSTICS__TIME_SCALE": "0.004",
        "CSMS_DIAGNOSTICS__UPLOAD_PROTOCOL": "http",
        "CSMS_MQTT__TOPIC_PREFIX": f"w{uuid.uuid4().hex[:10]}",
        "CSMS_CLUSTER__RENEW_SECONDS": "0.3",
    })
    server.start()
    server.wait_ready(2)
    stations = [STATIONS["1.6"](f"W-{n:02d}", server.ocpp_url, heartbeat_interval=1.0)
                for n in range(12)]
    fixing = STATIONS["2.0.1"]("W-FIX", server.ocpp_url, scenario="fixed-by-unlock",
                               heartbeat_interval=1.0)
    try:
        for station in stations:
            await station.start()
        await fixing.start()
        async with Database(empty_database_url) as database:
            store = Store(database)
            token = await create_token(store, "operator")
            listed = await store.list_stations()
            nodes = {s.connected_node for s in listed if s.connected}
            assert nodes == {"box-w0", "box-w1"}, nodes
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}",
                                         timeout=20) as client:
                # every charger answers, whichever worker holds it and takes the request
                for station in stations:
                    response = await client.post(
                        f"/api/v1/stations/{station.station_id}/commands/trigger",
                        headers=auth(token), json={"message": "Heartbeat"})
                    assert response.status_code == 200, response.text
                    assert response.json()["result"] == "accepted"
                # a log requested through any worker is uploaded to the worker that asked
                response = await client.post("/api/v1/stations/W-03/commands/get-log",
                                             headers=auth(token), json={"protocol": "http"})
                assert response.json()["result"] == "accepted", response.text
                for _ in range(200):
                    if await store.log_files("W-03"):
                        break
                    await asyncio.sleep(0.05)
                assert await store.log_files("W-03")
            # the diagnostics (one leader among the workers) fix the faulty charger
            for _ in range(400):
                if [r for r in await store.runs("W-FIX") if r.outcome == "fixed"]:
                    break
                await asyncio.sleep(0.05)
            assert [r.outcome for r in await store.runs("W-FIX")] == ["fixed"], server.log()[-3000:]
            assert "UnlockConnector" in [c.action for c in fixing.received]
    finally:
        for station in [*stations, fixing]:
            await station.stop()
        code = server.stop(signal.SIGTERM, timeout=30)
    assert code == 0, server.log()[-3000:]
    _, ps = await run_command("ps", "-eo", "args")
    assert "--worker-index" not in ps or str(server.ocpp_port) not in ps


async def test_workers_refuse_sqlite(tmp_path: Path) -> None:
    code, output = await run_command(*console_script("csms"), "serve", "--workers", "2",
                                     "--data-dir", str(tmp_path))
    assert code == 2 and "PostgreSQL" in output
