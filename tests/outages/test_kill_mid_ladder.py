"""One ``csms serve`` process (no cluster) on PostgreSQL is killed (SIGKILL) right after the
first remediation command of a ladder went out, and started again on the same port.

The charger has an internal error that a soft reset does not fix and a hard reset does
(scenario ``fixed-by-hard-reset``); the playbook's ladder is soft reset, hard reset, ticket.
The engine's state was saved before the soft reset was sent (write-ahead), so the restarted
server resumes the run from the database: the soft reset, whose outcome died with the
process, is never sent again; the hard reset follows and fixes the fault. Every command
reaches the charger once, and no ticket is opened for a fault that was fixed.
(``tests/e2e/test_restart_mid_ladder.py`` kills the server in a ladder that ends in a ticket.)
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from pathlib import Path

import pytest

from csms.store import Database, Store
from csms.store.models import RunRecord
from tests.e2e.helpers import STATIONS
from tests.e2e.process import ServerProcess

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SOFT = {"1.6": "Reset:Soft", "2.0.1": "Reset:OnIdle"}
HARD = {"1.6": "Reset:Hard", "2.0.1": "Reset:Immediate"}


@pytest.mark.parametrize("db_backend", ["postgres"], indirect=True)
@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_server_killed_after_the_first_remediation_step(
    empty_database_url: str, tmp_path: Path, version: str
) -> None:
    server = ServerProcess(empty_database_url, tmp_path / "server",
                           env={"CSMS_DIAGNOSTICS__TIME_SCALE": "0.004"})
    server.start()
    station = STATIONS[version]("LADDER-1", server.ocpp_url, scenario="fixed-by-hard-reset",
                                reconnect_delay=0.2, heartbeat_interval=1.0)
    restarts_logged = ""
    try:
        await station.start()
        await station.wait_for_command("Reset", timeout=30)  # the first remediation step
        assert server.stop(signal.SIGKILL) == -signal.SIGKILL  # no goodbye, no flush
        sent_before_kill = len(station.received)
        await asyncio.to_thread(server.start)  # same port: the charger reconnects by itself
        async with Database(empty_database_url) as database:
            store = Store(database)
            for _ in range(600):
                runs = await _fault_runs(store)
                if runs and all(r.outcome is not None for r in runs):
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)  # nothing more may be sent after the run ended
            runs = await _fault_runs(store)
            tickets = await store.tickets("LADDER-1")
        restarts_logged = server.log()
    finally:
        await station.stop()
        server.stop()

    assert len(runs) == 1 and runs[0].outcome is not None, restarts_logged[-4000:]
    assert "diagnostics_resumed" in restarts_logged  # the run came from the database
    counts = Counter(
        f"{c.action}:{c.payload.get('type', '')}" if c.action == "Reset" else c.action
        for c in station.received
    )
    # Every command at most once, the soft reset too (its outcome died with the process).
    assert max(counts.values()) == 1, counts
    assert counts[SOFT[version]] == 1 and counts[HARD[version]] == 1, counts
    assert len(station.received) > sent_before_kill  # the ladder went on after the restart
    assert station.healed_by == "hard_reset"
    assert len(tickets) <= 1 and not [t for t in tickets if t.status == "open"], tickets
    steps = [step["action"] for step in runs[0].data["steps"]]
    assert steps.count("soft_reset") == 1 and steps.count("hard_reset") == 1, steps
    assert runs[0].outcome == "fixed", runs[0]


async def _fault_runs(store: Store) -> list[RunRecord]:
    return [r for r in await store.runs("LADDER-1") if r.fault_class == "internal_error"]
