"""A 1.6 charger whose StartTransaction answer was lost sends it again (OCPP 1.6 §3.3 and
§4.8: transaction messages are retried until answered): the central system answers the same
transactionId and stores one session, over real frames, on both databases."""

from __future__ import annotations

from csms.app import CentralSystem
from tests.e2e.rawclient import BOOT_16, call, open_raw

START = {"connectorId": 1, "idTag": "RESEND-TAG", "meterStart": 1200,
         "timestamp": "2026-11-22T08:00:00.250Z"}


async def test_start_transaction_sent_again_gets_the_same_id(central: CentralSystem) -> None:
    ws = await open_raw(central.ocpp_url, "RESENDER", ["ocpp1.6"])
    try:
        assert (await call(ws, "BootNotification", BOOT_16, unique_id="boot"))[0] == 3
        first = await call(ws, "StartTransaction", START, unique_id="start-1")
        # The answer "was lost": the charger sends the same request with a new message id.
        again = await call(ws, "StartTransaction", START, unique_id="start-2")
        assert first[0] == again[0] == 3 and again[1] == "start-2"
        tx = first[2]["transactionId"]
        assert again[2]["transactionId"] == tx
        assert again[2]["idTagInfo"]["status"] == "Accepted"
        # The next session of the same charger, with the same tag, is a new transaction.
        later = await call(ws, "StartTransaction", {
            **START, "meterStart": 4800, "timestamp": "2026-11-22T09:00:00.000Z"},
            unique_id="start-3")
        assert later[2]["transactionId"] != tx
        stop = await call(ws, "StopTransaction", {
            "transactionId": tx, "meterStop": 4800, "timestamp": "2026-11-22T08:40:00Z",
            "reason": "Local"}, unique_id="stop-1")
        assert stop[0] == 3
    finally:
        await ws.close()
    transactions = {t.transaction_id: t for t in await central.store.transactions("RESENDER")}
    assert sorted(transactions) == sorted([str(tx), str(later[2]["transactionId"])])
    assert transactions[str(tx)].energy_wh == 3600.0
