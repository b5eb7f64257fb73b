"""A hostile charger cannot create label values: unknown action names are counted as
``unknown``, malformed frames and refused handshakes have their own bounded counters."""

from __future__ import annotations

import json

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from csms.app import CentralSystem
from csms.metrics.labels import ACTIONS, UNKNOWN
from csms.security.passwords import hash_password
from tests.conftest import MakeCentral
from tests.e2e.rawclient import BOOT_16, BOOT_201, basic_auth, call, open_raw, recv_json
from tests.metrics.helpers import Scrape, scrape

MESSAGES = "csms_ocpp_messages_total"


def unknown(result: Scrape, version: str, direction: str, kind: str) -> float:
    return result.value(MESSAGES, version=version, action=UNKNOWN, direction=direction,
                        type=kind)


async def test_unknown_actions_share_one_label(central: CentralSystem) -> None:
    async with await open_raw(central.ocpp_url, "HOSTILE-16") as ws16:
        assert (await call(ws16, "BootNotification", BOOT_16))[0] == 3
        answer = await call(ws16, "EvilAction", {}, unique_id="h1")
        assert answer[:2] == [4, "h1"]
        assert answer[2] in {"NotImplemented", "NotSupported"}
        # A 2.0.1 action is not a 1.6 action either.
        answer = await call(ws16, "TransactionEvent", {}, unique_id="h2")
        assert answer[0] == 4
        before = await scrape(central)
        for n in range(30):
            await call(ws16, f"Evil-{n}", {}, unique_id=f"e{n}")
    async with await open_raw(central.ocpp_url, "HOSTILE-201", ["ocpp2.0.1"]) as ws201:
        assert (await call(ws201, "BootNotification", BOOT_201))[0] == 3
        answer = await call(ws201, "StartTransaction", {}, unique_id="h3")  # 1.6 only
        assert answer[0] == 4

    result = await scrape(central)
    assert unknown(result, "1.6", "in", "call") == 32
    assert unknown(result, "1.6", "out", "callerror") == 32
    assert unknown(result, "2.0.1", "in", "call") == 1
    assert unknown(result, "2.0.1", "out", "callerror") == 1
    assert result.value(MESSAGES, version="1.6", action="BootNotification", direction="in",
                        type="call") == 1
    # Thirty new names, no new series.
    assert len(result.samples(MESSAGES)) == len(before.samples(MESSAGES)) + 4
    for sample in result.samples(MESSAGES):
        assert sample.labels["action"] in ACTIONS[sample.labels["version"]] | {UNKNOWN}
    assert "Evil" not in result.text
    assert "HOSTILE" not in result.text


async def test_malformed_frames_are_counted(central: CentralSystem) -> None:
    async with await open_raw(central.ocpp_url, "MALFORMED-16") as ws:
        await ws.send("this is not json")
        await ws.send(json.dumps([2, "m1", 42, {}]))  # action is not a string
        await ws.send(json.dumps([7, "m2", "Heartbeat", {}]))  # no such message type
        for _ in range(2):  # the first has no readable id: no answer in 1.6
            assert (await recv_json(ws))[0] == 4
    result = await scrape(central)
    assert result.value("csms_ocpp_malformed_frames_total", version="1.6") == 3
    assert result.value("csms_ocpp_malformed_frames_total", version="2.0.1") == 0
    assert result.total(MESSAGES, version="1.6") == 0


async def test_refused_connections_are_counted_by_reason(make_central: MakeCentral) -> None:
    central = await make_central(unknown_stations="reject")
    await central.store.set_password_hash("LOCKED-16", hash_password("s3cret"))
    for station_id, headers in (("a/b", None), ("NEVER-SEEN", None), ("LOCKED-16", None),
                                ("LOCKED-16", basic_auth("LOCKED-16", "wrong"))):
        with pytest.raises(InvalidStatus):
            await open_raw(central.ocpp_url, station_id, headers=headers)
    ws = await open_raw(central.ocpp_url, "LOCKED-16", ["ocpp9.9"],
                        headers=basic_auth("LOCKED-16", "s3cret"))
    with pytest.raises(ConnectionClosed):
        await ws.recv()
    result = await scrape(central)
    refused = {s.labels["reason"]: s.value
               for s in result.samples("csms_ocpp_connections_refused_total")}
    assert refused == {"bad_path": 1, "unknown_station": 1, "unauthorized": 2,
                       "no_subprotocol": 1, "other": 0}
    assert result.total("csms_ocpp_connections_total") == 0
