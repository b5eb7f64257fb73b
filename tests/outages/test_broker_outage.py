"""The MQTT broker goes away while chargers talk: the chargers do not notice.

``tests/mqtt/test_broker_restart.py`` proves that the events produced while the broker is
away are buffered and all reach a subscriber with a persistent session once it is back, in
order. This test adds the chargers' side: during the outage every message of a 1.6 and a
2.0.1 charger running charging sessions is answered with a CALLRESULT at its first attempt
(the broker is not on the path of an answer), is stored, and its status notices are
published once the broker is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import datetime
from pathlib import Path

import pytest

from csms.mqtt import MqttPublisher
from csms.settings import MqttSettings
from csms.store import Database
from simulators import StationBase
from tests.conftest import MakeCentral
from tests.e2e.helpers import STATIONS, until
from tests.mqtt.brokers import PrivateBroker, Subscriber
from tests.outages.traffic import Ledger, Talker, check, stored_markers

pytestmark = [pytest.mark.slow]


@pytest.mark.parametrize("db_backend", ["postgres"], indirect=True)
async def test_chargers_are_served_while_the_broker_is_away(
    make_central: MakeCentral, database: Database, tmp_path: Path
) -> None:
    (tmp_path / "mosquitto").mkdir()
    broker = PrivateBroker(tmp_path / "mosquitto")
    await broker.start()
    prefix = f"outage-{uuid.uuid4().hex[:12]}"
    subscriber = Subscriber(broker.port, f"{prefix}/#", client_id=f"sub-{prefix}",
                            persistent=True)
    await subscriber.start()
    ledger = Ledger()
    stop = asyncio.Event()
    stations: list[StationBase] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        central = await make_central(settings={"mqtt": MqttSettings(
            enabled=True, port=broker.port, topic_prefix=prefix, client_id=f"csms-{prefix}",
            reconnect_initial=0.05, reconnect_max=0.4)})
        publisher = central.api.extras["mqtt"]
        assert isinstance(publisher, MqttPublisher)
        await until(lambda: publisher.connected)
        deadline = asyncio.get_running_loop().time() + 60
        stations = [STATIONS[v](f"MQ-{v}", central.ocpp_url, connectors=1)
                    for v in ("1.6", "2.0.1")]
        for station in stations:
            await station.start()
        tasks = [asyncio.create_task(Talker(s, ledger, deadline).run(stop)) for s in stations]
        ids = [s.station_id for s in stations]
        await until(lambda: all(ledger.acknowledged_by(i) >= 4 for i in ids), 10)

        await broker.stop()
        await until(lambda: not publisher.connected)
        marks = {i: ledger.acknowledged_by(i) for i in ids}
        await until(lambda: all(ledger.acknowledged_by(i) >= marks[i] + 12 for i in ids), 20)
        assert publisher.buffered > 0 and not publisher.connected  # still away
        await broker.start()
        stop.set()
        await asyncio.gather(*tasks)
        await until(lambda: publisher.connected and publisher.buffered == 0, 10)

        wanted = {(sid, moment) for d in ledger.deliveries for kind, sid, moment in d.markers
                  if kind == "status"}

        def published() -> set[tuple[str, datetime]]:
            return {(m.json["station_id"], datetime.fromisoformat(m.json["data"]["station_time"]))
                    for m in subscriber.on_kind("status")
                    if m.json["station_id"] in ids and m.json["data"].get("station_time")}

        await until(lambda: wanted <= published(), 10)
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for station in stations:
            await station.stop()
        await subscriber.stop()
        await broker.stop()

    assert not ledger.failures, ledger.failures  # nothing failed, nothing was sent twice
    assert all(d.attempts == 1 and d.acknowledged for d in ledger.deliveries)
    problems, _ = check(ledger, await stored_markers(database, ids))
    assert not problems, problems[:20]
    assert publisher.dropped == 0
