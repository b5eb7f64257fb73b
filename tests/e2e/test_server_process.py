"""The issue's "done when": ``csms serve`` as a real process, 10 OCPP 2.0.1 and 10 OCPP 1.6
simulated chargers from the ``csms-sim`` command, and 20 booted stations with their connector
statuses in the database afterwards; on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import pytest

from csms.store import Database, Store
from tests.e2e.process import ServerProcess, console_script, run_command

pytestmark = pytest.mark.slow


async def test_serve_with_twenty_simulated_stations(
    empty_database_url: str, tmp_path: Path
) -> None:
    with ServerProcess(empty_database_url, tmp_path / "server") as server:
        runs = [
            run_command(*console_script("csms-sim"), "--protocol", protocol, "--count", "10",
                        "--url", server.ocpp_url, "--id-prefix", prefix, "--duration", "3",
                        "--sessions", "--session-every", "1", "--session-duration", "1",
                        "--meter-interval", "0.5", "--summary-interval", "1")
            for protocol, prefix in (("2.0.1", "SIM201-"), ("1.6", "SIM16-"))
        ]
        results = await asyncio.gather(*runs)
        for code, output in results:
            assert code == 0, output
        assert server.stop(signal.SIGTERM) == 0, server.log()
        # csms/runtime.py: the garbage collector tuned for many connections, start-up frozen
        [frozen] = [line for line in server.log().splitlines() if '"gc_frozen"' in line]
        assert json.loads(frozen)["threshold"] == [100_000, 50, 100]
        assert json.loads(frozen)["objects"] > 10_000

    async with Database(empty_database_url) as database:
        store = Store(database)
        stations = await store.list_stations()
        assert len(stations) == 20
        for station in stations:
            version = "2.0.1" if station.id.startswith("SIM201-") else "1.6"
            assert station.protocol == version
            assert station.boot_count >= 1 and station.last_boot_at is not None
            assert station.vendor and station.model
            assert not station.connected  # the server stopped cleanly
            rows = await store.connectors(station.id)
            connectors = {(c.evse_id, c.connector_id): c for c in rows}
            wanted = {(1, 1), (2, 1)} if version == "2.0.1" else {(0, 0), (0, 1), (0, 2)}
            assert wanted <= set(connectors), (station.id, sorted(connectors))
            for key in wanted:
                assert connectors[key].status in {"Available", "Preparing", "Charging",
                                                  "Occupied", "Finishing", "SuspendedEV"}
        sessions = [t for s in stations for t in await store.transactions(s.id)]
        assert sessions, "the simulators ran charging sessions with meter values"
        readings = [r for s in stations for r in await store.meter_readings(s.id)]
        assert readings


async def test_db_upgrade_command_and_station_cli(empty_database_url: str) -> None:
    csms = console_script("csms")
    code, output = await run_command(*csms, "db", "upgrade", "--database-url",
                                     empty_database_url)
    assert code == 0, output
    assert "revision" in output
    code, output = await run_command(*csms, "station", "add", "CP-CLI", "--generate-password",
                                     "--location", "Main St 1", "--database-url",
                                     empty_database_url)
    assert code == 0, output
    password = output.split("password:")[1].strip()
    assert len(password) >= 16
    code, output = await run_command(*csms, "station", "list", "--database-url",
                                     empty_database_url)
    assert code == 0 and "CP-CLI" in output
    async with Database(empty_database_url) as database:
        station = await Store(database).get_station("CP-CLI")
        assert station is not None and station.password_hash and station.location == "Main St 1"
        assert password not in station.password_hash
