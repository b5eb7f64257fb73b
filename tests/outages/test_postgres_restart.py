"""PostgreSQL stops while chargers talk, and comes back: nothing acknowledged is lost, and the
central system recovers by itself.

The database is a private cluster (the shared one on 5432 keeps serving the other tests);
the central system runs in-process on it, logging as in production (JSON). Six chargers
(three per OCPP version) run charging sessions and resend every message until it is
acknowledged (:mod:`tests.outages.traffic`). A seventh reports a fault that an unlock fixes:
the diagnostics engine decides its first command while the database is away. Then
PostgreSQL is stopped (``fast``: sessions terminated; ``immediate``: no shutdown, crash
recovery at the next start) and started again a few seconds later; meanwhile one charger
loses power and another leaves for good.

During the outage the CSMS answers CALLERROR InternalError (it acknowledges nothing it did not
store, ADR 0003) and refuses handshakes with HTTP 500. Afterwards: every acknowledged message
is stored (once, unless it was sent again), every charger gets through, the charger that lost
power boots again, the one that left is recorded disconnected (and the engine knows it is
offline), and the fault is remediated with each command sent exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from csms.app import CentralSystem
from csms.settings import (
    DatabaseSettings,
    DiagnosticsSettings,
    HttpSettings,
    OcppSettings,
    Settings,
    UploadSettings,
)
from csms.store import Database, Store
from csms.store.models import ConnectionLogEntry, Station
from simulators import StationBase
from tests.e2e.helpers import STATIONS, until
from tests.outages.conftest import JsonLog
from tests.outages.postgres import PrivatePostgres
from tests.outages.traffic import Ledger, Talker, check, stored_markers

pytestmark = [pytest.mark.slow]

PER_VERSION = 3
#: Messages every charger gets acknowledged before the outage, and again after it.
ACKS = 8
#: The outage lasts at least this long after the engine first failed to save its state.
OUTAGE = 1.5
#: Shrinks the engine's waits (grace 3 s, silence 9 s, settle 1.2 s).
TIME_SCALE = 0.01


def _settings(url: str, data_dir: Path) -> Settings:
    return Settings(
        data_dir=data_dir,
        node_id="outage-node",
        ocpp=OcppSettings(host="127.0.0.1", port=0, call_timeout=2.0),
        http=HttpSettings(host="127.0.0.1", port=0),
        uploads=UploadSettings(ftp_host="127.0.0.1", ftp_port=0),
        diagnostics=DiagnosticsSettings(time_scale=TIME_SCALE),
        database=DatabaseSettings(url=url, auto_migrate=True),
    )


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_postgres_restart_while_chargers_talk(
    private_postgres: PrivatePostgres, json_log: JsonLog, tmp_path: Path, mode: str,
    record_property: Any,
) -> None:
    pg = private_postgres
    central = CentralSystem(_settings(pg.url, tmp_path))
    await central.start()
    ledger = Ledger()
    deadline = asyncio.get_running_loop().time() + 90
    url = central.ocpp_url
    stations: list[StationBase] = [
        STATIONS[version](f"PG-{version}-{n}", url, connectors=1, reconnect_delay=0.2)
        for version in ("1.6", "2.0.1") for n in range(PER_VERSION)
    ]
    ids = [s.station_id for s in stations]
    faulty = STATIONS["1.6"]("PG-FAULT", url, scenario="fixed-by-unlock", reconnect_delay=0.2)
    leaver = STATIONS["2.0.1"]("PG-LEAVER", url, connectors=1, reconnect_delay=0.2)
    talkers = [Talker(s, ledger, deadline) for s in stations]
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []

    def engine_failed_to_save() -> bool:
        return any(line.get("write") == "engine_state"
                   for line in json_log.lines("diagnostics_write_failed"))

    try:
        for station in [*stations, leaver]:
            await station.start()
        tasks = [asyncio.create_task(t.run(stop)) for t in talkers]
        await until(lambda: all(ledger.acknowledged_by(i) >= ACKS for i in ids), 30)
        async with Database(pg.url) as database:
            store = Store(database)
            await faulty.start()
            for _ in range(200):  # the run waits out its grace period (3 s)
                if await store.runs("PG-FAULT"):
                    break
                await asyncio.sleep(0.02)
            assert not faulty.received, "acted before the outage"

        failed = sum(ledger.failures.values())
        await pg.stop(mode)
        # The outage is felt: the talkers' attempts fail, the engine cannot save its state.
        await until(lambda: sum(ledger.failures.values()) >= failed + len(stations), 15)
        await stations[0].reboot(wait=False)  # power loss
        await leaver.go_offline()  # gone for good
        await until(engine_failed_to_save, 15)
        await asyncio.sleep(OUTAGE)
        during = sum(ledger.failures.values()) - failed
        await pg.start()

        marks = {i: ledger.acknowledged_by(i) for i in ids}
        await until(lambda: all(ledger.acknowledged_by(i) >= marks[i] + ACKS for i in ids), 60)
        await until(lambda: faulty.healed_by == "unlock", 30)
        stop.set()
        await asyncio.gather(*tasks)  # every session under way is finished
        async with Database(pg.url) as database:
            store = Store(database)
            for _ in range(200):  # the leaver's disconnect is stored once the database is up
                leaver_row = await store.get_station("PG-LEAVER")
                if leaver_row is not None and not leaver_row.connected:
                    break
                await asyncio.sleep(0.05)
            runs = {r.detection for r in await store.runs("PG-LEAVER")}
        registry_ids = set(central.registry.ids())
        engine = central.diagnostics.engine if central.diagnostics else None
        assert engine is not None
        leaver_runs = [r.detection for r in engine.runs() if r.station_id == "PG-LEAVER"]
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for station in [*stations, faulty, leaver]:
            await station.stop()
        await central.stop()

    async with Database(pg.url) as database:
        stored = await stored_markers(database, ids)
        async with database.read_session() as session:
            boots = dict((await session.execute(
                select(Station.id, Station.boot_count).where(Station.id.in_(ids)))).all())
            log_kinds = list((await session.execute(
                select(ConnectionLogEntry.kind).where(ConnectionLogEntry.station_id == ids[0])
                .order_by(ConnectionLogEntry.at, ConnectionLogEntry.id))).scalars())
    problems, duplicates = check(ledger, stored)
    record_property("acknowledged", ledger.acknowledged)
    record_property("failed_attempts", dict(ledger.failures))
    record_property("duplicates_of_retried", duplicates)
    print(f"postgres {mode}: {ledger.acknowledged} messages acknowledged, "
          f"{ledger.retried} retried, failures {dict(ledger.failures)}, "
          f"{duplicates} duplicates of retried messages")

    # Nothing acknowledged was lost, nothing sent once was stored twice.
    assert not problems, problems[:20]
    assert all(d.acknowledged for d in ledger.deliveries)
    # The outage was felt, as CALLERRORs (never a CALLRESULT for an unstored message) or as a
    # charger without connection.
    assert during >= len(stations), ledger.failures
    assert set(ledger.failures) <= {"CALLERROR InternalError", "not connected", "no answer"}
    assert ledger.failures["CALLERROR InternalError"] > 0
    # Every charger came back; the one that lost power booted again.
    assert set(ids) <= registry_ids, registry_ids
    assert stations[0].boot_count == 2 and boots[ids[0]] == 2, boots
    assert log_kinds == ["connected", "disconnected", "connected", "disconnected"], log_kinds
    # The charger that left during the outage is known to be gone, in the database and by
    # the engine (an offline run: ticketed if it stays away).
    assert leaver_row is not None and not leaver_row.connected
    assert "offline" in runs and "offline" in leaver_runs, (runs, leaver_runs)
    # The fault: every command decided (the first one while the database was away) was sent
    # exactly once, and the unlock fixed it.
    decided = [line for line in json_log.lines("diagnostics_command")
               if line.get("charger_id") == "PG-FAULT"]
    received = Counter((c.action, repr(sorted(c.payload.items()))) for c in faulty.received)
    assert len(decided) == len(faulty.received) and max(received.values()) == 1, (
        [d["command"] for d in decided], received)
    assert [c.action for c in faulty.received][-1] == "UnlockConnector", received
