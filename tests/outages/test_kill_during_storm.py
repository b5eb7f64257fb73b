"""A reconnect storm, and the server killed (SIGKILL) in the middle of it.

300 chargers (half 1.6, half 2.0.1) connect to one ``csms serve`` process on PostgreSQL at
the same moment; each boots (BootNotification on every connection, as after a power cut)
and reports its connectors. Once some boots are acknowledged, the server is killed, and
started again on the same port while the chargers retry with their back-off. Every charger
comes back and boots; everything acknowledged before and after the kill is stored; the
database shows every charger connected, the server's registry holds all of them; no command
reached a charger twice.
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from csms.store import Database
from csms.store.models import Station, StatusHistory
from simulators import StationBase
from tests.e2e.helpers import STATIONS
from tests.e2e.process import ServerProcess

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

CHARGERS = 300
#: Acknowledged boots after which the server is killed (the storm is still raging).
KILL_AFTER_BOOTS = 40


def _acked_boots(station: StationBase) -> int:
    return sum(1 for m in station.sent if m.action == "BootNotification" and m.response
               and m.response.get("status") == "Accepted")


def _acked_statuses(station: StationBase) -> Counter[tuple[str, datetime]]:
    found: Counter[tuple[str, datetime]] = Counter()
    for message in station.sent:
        if message.action == "StatusNotification" and message.response is not None:
            status = message.payload.get("status") or message.payload["connectorStatus"]
            moment = datetime.fromisoformat(message.payload["timestamp"].replace("Z", "+00:00"))
            found[(str(status), moment)] += 1
    return found


@pytest.mark.parametrize("db_backend", ["postgres"], indirect=True)
async def test_server_killed_during_a_reconnect_storm(
    empty_database_url: str, tmp_path: Path, record_property: Any
) -> None:
    server = ServerProcess(empty_database_url, tmp_path / "server", env={
        # One address for 300 chargers (a NAT, as far as the limits can tell).
        "CSMS_LIMITS__EXEMPT_NETWORKS": '["127.0.0.1"]',
    })
    server.start()
    stations = [
        STATIONS["1.6" if n % 2 else "2.0.1"](
            f"STORM-{n:03d}", server.ocpp_url, connectors=1, reconnect_delay=0.3,
            boot_on_reconnect=True, response_timeout=20.0, open_timeout=20.0)
        for n in range(CHARGERS)
    ]
    ids = [s.station_id for s in stations]
    try:
        for station in stations:  # every charger at once
            await station.start(wait=False)
        for _ in range(3000):
            if sum(_acked_boots(s) for s in stations) >= KILL_AFTER_BOOTS:
                break
            await asyncio.sleep(0.01)
        assert server.stop(signal.SIGKILL) == -signal.SIGKILL
        booted_at_kill = sum(1 for s in stations if _acked_boots(s))
        acked_at_kill = {s.station_id: (_acked_boots(s), _acked_statuses(s)) for s in stations}
        await asyncio.to_thread(server.start)

        for _ in range(1200):  # every charger back, booted on its new connection
            if all(s.booted.is_set() and s.connected for s in stations):
                break
            await asyncio.sleep(0.05)
        back = sum(1 for s in stations if s.booted.is_set() and s.connected)
        # What was acknowledged up to now, then what the database holds (an answer follows
        # its commit, so everything acknowledged is there by now).
        acked_now = {s.station_id: (_acked_boots(s), _acked_statuses(s)) for s in stations}
        async with Database(empty_database_url) as database, \
                database.read_session() as session:
            rows = {row.id: row for row in (await session.scalars(
                select(Station).where(Station.id.in_(ids)))).all()}
            history: dict[str, Counter[tuple[str, datetime]]] = {i: Counter() for i in ids}
            for sid, status, moment in await session.execute(
                select(StatusHistory.station_id, StatusHistory.raw_status,
                       StatusHistory.station_time)
                .where(StatusHistory.station_id.in_(ids))
            ):
                if moment is not None:
                    history[sid][(status, moment.astimezone(UTC))] += 1
    finally:
        await asyncio.gather(*(s.stop() for s in stations))
        server.stop()

    record_property("booted_at_kill", booted_at_kill)
    print(f"storm: {booted_at_kill}/{CHARGERS} chargers had booted at the kill; "
          f"{back}/{CHARGERS} back and booted after the restart")
    assert back == CHARGERS, server.log()[-3000:]
    assert booted_at_kill >= 1
    lost: list[str] = []
    for sid in ids:
        row = rows.get(sid)
        boots_before, statuses_before = acked_at_kill[sid]
        boots_now, statuses_now = acked_now[sid]
        assert boots_now >= 1 and statuses_now, sid
        # Acknowledged before the kill (and after it): stored. A boot may be stored once more
        # than acknowledged (stored, then killed before the answer went out), never less.
        if row is None or not boots_now <= row.boot_count <= boots_now + 1:
            lost.append(f"{sid}: {boots_now} boots acknowledged, "
                        f"{row.boot_count if row else 0} stored")
        assert boots_before <= boots_now and not statuses_before - statuses_now
        missing = statuses_now - history[sid]  # counts: each acknowledged status stored
        if missing:
            lost.append(f"{sid}: statuses acknowledged, not stored: {dict(missing)}")
        if row is None or not row.connected:
            lost.append(f"{sid}: not marked connected")
    assert not lost, lost[:20]
    commands = Counter((s.station_id, c.action, repr(sorted(c.payload.items())))
                       for s in stations for c in s.received)
    assert not commands or max(commands.values()) == 1, commands.most_common(5)
