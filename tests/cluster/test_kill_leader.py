"""Two real ``csms serve`` processes on PostgreSQL and Mosquitto: the leader is killed in the
middle of a remediation ladder; the other node takes the lease over and finishes the run,
with no command sent twice and exactly one ticket."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections import Counter
from pathlib import Path

import pytest

from csms.store import Database, Store
from tests.e2e.helpers import STATIONS
from tests.e2e.process import ServerProcess

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def _node(url: str, base: Path, name: str, prefix: str) -> ServerProcess:
    return ServerProcess(url, base / name, env={
        "CSMS_NODE_ID": name,
        "CSMS_DIAGNOSTICS__TIME_SCALE": "0.004",
        "CSMS_CLUSTER__ENABLED": "true",
        "CSMS_CLUSTER__LEASE_SECONDS": "2",
        "CSMS_CLUSTER__RENEW_SECONDS": "0.3",
        "CSMS_MQTT__TOPIC_PREFIX": prefix,
        "CSMS_MQTT__RECONNECT_INITIAL": "0.1",
    })


@pytest.mark.parametrize("db_backend", ["postgres"], indirect=True)
@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_killing_the_leader_mid_ladder(
    empty_database_url: str, tmp_path: Path, version: str
) -> None:
    prefix = f"k{uuid.uuid4().hex[:10]}"
    a = _node(empty_database_url, tmp_path, "node-a", prefix)
    b = _node(empty_database_url, tmp_path, "node-b", prefix)
    a.start()
    await asyncio.sleep(1.0)  # a takes the lease first
    b.start()
    station = STATIONS[version]("KILL-1", a.ocpp_url, scenario="never-fixed",
                                reconnect_delay=0.2, heartbeat_interval=1.0)
    try:
        async with Database(empty_database_url) as database:
            store = Store(database)
            assert await _holder(store) == "node-a"
            await station.start()
            await station.wait_for_command("UnlockConnector", timeout=20)
            assert a.stop(signal.SIGKILL) == -signal.SIGKILL  # leader gone, no goodbye
            station.url = b.ocpp_url  # the charger finds the other node
            for _ in range(600):
                if await store.tickets("KILL-1"):
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)  # nothing more may be sent after the ticket
            tickets = await store.tickets("KILL-1")
            holder = await _holder(store)
            runs = await store.runs("KILL-1")
    finally:
        await station.stop()
        a.stop()
        b.stop()
    assert holder == "node-b"
    assert len(tickets) == 1, b.log()[-4000:]
    counts = Counter(
        f"{c.action}:{c.payload.get('type', '')}" for c in station.received
        if c.action in {"UnlockConnector", "Reset"}
    )
    assert counts and max(counts.values()) == 1, counts
    hard = "Hard" if version == "1.6" else "Immediate"
    assert counts[f"Reset:{hard}"] == 1, counts
    steps = [step["action"] for step in tickets[0].data["steps"]]
    for action in ("unlock", "soft_reset", "hard_reset"):
        assert steps.count(action) == 1, steps
    assert len({r.run_id for r in runs}) == 1 and runs[0].node == "node-b"


async def _holder(store: Store) -> str | None:
    from datetime import UTC, datetime

    return await store.lease_holder("diagnostics", datetime.now(UTC))
