"""Kill the real server process in the middle of a remediation ladder and start it again:
the run resumes where it was, no command is sent twice, and exactly one ticket is opened."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from pathlib import Path

import pytest

from csms.store import Database, Store
from tests.e2e.helpers import STATIONS
from tests.e2e.process import ServerProcess

pytestmark = pytest.mark.slow


# SQLite only: on PostgreSQL the same kill is tested by tests/outages/test_kill_mid_ladder.py
# (and, with a second node taking over, tests/cluster/test_kill_leader.py).
@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_restart_mid_ladder_resumes_without_duplicates(
    empty_database_url: str, tmp_path: Path, version: str
) -> None:
    server = ServerProcess(empty_database_url, tmp_path / "server",
                           env={"CSMS_DIAGNOSTICS__TIME_SCALE": "0.004"})
    server.start()
    station = STATIONS[version]("RESTART-1", server.ocpp_url, scenario="never-fixed",
                                reconnect_delay=0.2)
    try:
        await station.start()
        await station.wait_for_command("UnlockConnector", timeout=20)
        assert server.stop(signal.SIGKILL) == -signal.SIGKILL  # mid-ladder, no goodbye
        server.start()
        async with Database(empty_database_url) as database:
            store = Store(database)
            for _ in range(400):
                if await store.tickets("RESTART-1"):
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)  # nothing more may be sent after the ticket
            tickets = await store.tickets("RESTART-1")
    finally:
        await station.stop()
        server.stop()
    assert len(tickets) == 1, server.log()[-3000:]
    counts = Counter(
        f"{c.action}:{c.payload.get('type', '')}" for c in station.received
        if c.action in {"UnlockConnector", "Reset"}
    )
    hard = "Hard" if version == "1.6" else "Immediate"
    # At most once: a command decided just before the kill, whose delivery is unknown, is
    # taken as timed out on resume and never sent again (the ladder moves on).
    assert max(counts.values()) == 1, counts
    assert counts["UnlockConnector:"] == 1 and counts[f"Reset:{hard}"] == 1, counts
    steps = [step["action"] for step in tickets[0].data["steps"]]
    for action in ("unlock", "soft_reset", "hard_reset"):
        assert steps.count(action) == 1, steps
