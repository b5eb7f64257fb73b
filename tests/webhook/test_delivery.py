"""Ticket events POSTed by the real central system to a real HTTP receiver (both databases):
signed, in order, retried with backoff, parked and retried through the API, durable across a
restart, and never sent twice by two dispatchers sharing the outbox."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from csms.api import webhooks
from csms.api.auth import Authenticator
from csms.app import CentralSystem
from csms.bus import EventBus, Notice, Topic
from csms.settings import WebhookSettings
from csms.store import Database, Store
from csms.store.base import utc_now
from csms.webhook import WebhookDispatcher
from diagnostics.tickets import TicketStatus
from tests.e2e.helpers import STATIONS, until
from tests.webhook.conftest import (
    SECRET,
    WebhookCentral,
    bearer,
    create_token,
    dispatcher_of,
    verify_signature,
    webhook_settings,
)
from tests.webhook.receiver import Received, Receiver


def publish(central: CentralSystem, kind: str, ticket_id: str, **fields: Any) -> None:
    """A ticket notice as the diagnostics runner publishes it (whole ticket in ``data``)."""
    data = {"ticket_id": ticket_id, "station_id": "CP-1", "status": "open", **fields}
    central.bus.publish(Notice(Topic.TICKET, kind, "CP-1", data))


async def statuses(central: CentralSystem) -> dict[str, int]:
    return await central.store.webhook_status_counts()


async def wait_for(central: CentralSystem, timeout: float = 10.0, **expected: int) -> None:
    """Poll the outbox until the given per-status counts hold."""
    deadline = time.monotonic() + timeout
    while True:
        counts = await statuses(central)
        if all(counts[name] == value for name, value in expected.items()):
            return
        assert time.monotonic() < deadline, f"outbox {counts}, expected {expected}"
        await asyncio.sleep(0.02)


def in_order(requests: list[Received]) -> bool:
    return [r.delivery for r in requests] == sorted(r.delivery for r in requests)


async def test_engine_ticket_is_posted_signed_then_operator_update_in_order(
    webhook_central: WebhookCentral, receiver: Receiver
) -> None:
    central = await webhook_central()
    runner = central.diagnostics
    assert runner is not None and runner.engine is not None
    async with STATIONS["2.0.1"]("WH-SAFE", central.ocpp_url, scenario="safety-fault"):
        await until(lambda: any(r.json["event"] == "ticket.opened"
                                for r in receiver.delivered()), timeout=20)
        opened = next(r for r in receiver.delivered() if r.json["event"] == "ticket.opened")
        ticket_id = opened.ticket_id
        (stored,) = await central.store.tickets("WH-SAFE")
        assert stored.ticket_id == ticket_id

        # The receiver checks the signature on its own (hmac, the shared secret).
        assert verify_signature(opened)
        assert not verify_signature(opened, secret="some-other-secret")
        assert abs(int(opened.headers["x-csms-timestamp"]) - time.time()) < 300
        assert opened.headers["content-type"] == "application/json"
        assert opened.headers["x-csms-event"] == "ticket.opened"
        body = opened.json
        assert body["id"] == opened.delivery
        assert set(body) == {"id", "event", "created_at", "change", "ticket"}
        assert body["ticket"]["station_id"] == "WH-SAFE"
        assert body["ticket"]["priority"] == "P1"
        assert body["ticket"]["status"] == "open"

        await runner.change_ticket(ticket_id, TicketStatus.ACKNOWLEDGED, "on my way",
                                   by="dispatcher (test)")
        await until(lambda: any(r.json["ticket"]["status"] == "acknowledged"
                                for r in receiver.delivered()), timeout=10)

    mine = [r for r in receiver.requests if r.ticket_id == ticket_id]
    assert all(r.ok and verify_signature(r) for r in mine)
    assert mine[0].json["event"] == "ticket.opened"
    assert in_order(mine)
    assert len({r.delivery for r in mine}) == len(mine)  # each sent once
    acknowledged = next(r for r in mine if r.json["ticket"]["status"] == "acknowledged")
    assert acknowledged.json["event"] == "ticket.updated"
    assert acknowledged.headers["x-csms-event"] == "ticket.updated"
    assert acknowledged.json["change"] == "on my way"
    assert "change" not in acknowledged.json["ticket"]
    counters = dispatcher_of(central).counters
    await until(lambda: counters.delivered >= len(mine))  # counted after the response
    assert counters.failed == 0


async def test_failures_and_a_timeout_are_retried_with_backoff_then_delivered_once(
    webhook_central: WebhookCentral, receiver: Receiver
) -> None:
    central = await webhook_central(timeout=0.3, backoff_initial=0.1, backoff_max=0.4)
    receiver.plan = [500, 503, "hang"]
    publish(central, "opened", "T-RETRY", title="RCD tripped")

    await wait_for(central, delivered=1)
    (delivery_id,) = {r.delivery for r in receiver.requests}
    attempts = receiver.for_delivery(delivery_id)
    assert [r.behaviour for r in attempts] == [500, 503, "hang", 200]
    assert [r.headers["x-csms-attempt"] for r in attempts] == ["1", "2", "3", "4"]
    assert len({r.body for r in attempts}) == 1  # the same delivery every time
    assert all(verify_signature(r) for r in attempts)
    # Backoff: at least half of 0.1, 0.2, 0.4 s (doubling) between attempts (+ the timeout).
    gaps = [b.at - a.at for a, b in itertools.pairwise(attempts)]
    assert gaps[0] >= 0.05 * 0.9 and gaps[1] >= 0.1 * 0.9 and gaps[2] >= (0.3 + 0.2) * 0.9

    row = await central.store.get_webhook_delivery(delivery_id)
    assert row is not None
    assert (row.delivery.status, row.delivery.attempts) == ("delivered", 4)
    assert row.delivery.last_status_code == 200
    assert row.delivery.last_error is not None and "timeout" in row.delivery.last_error
    counters = dispatcher_of(central).counters
    assert (counters.delivered, counters.failed, counters.parked) == (1, 3, 0)
    await asyncio.sleep(0.5)
    assert len(receiver.requests) == 4  # nothing more once delivered


async def test_one_failing_ticket_does_not_hold_back_the_others(
    webhook_central: WebhookCentral, receiver: Receiver
) -> None:
    central = await webhook_central(backoff_initial=0.2, backoff_max=0.2)
    failures = {"T-SLOW": 2}

    def decide(request: Received) -> int | None:
        left = failures.get(request.ticket_id, 0)
        if left:
            failures[request.ticket_id] = left - 1
            return 500
        return None

    receiver.decide = decide
    publish(central, "opened", "T-SLOW")
    publish(central, "updated", "T-SLOW", status="acknowledged")
    publish(central, "opened", "T-FAST")
    publish(central, "resolved", "T-FAST", status="resolved")

    await wait_for(central, delivered=4)
    delivered = receiver.delivered()
    order = [(r.ticket_id, r.json["event"]) for r in delivered]
    assert order.index(("T-FAST", "ticket.resolved")) < order.index(("T-SLOW", "ticket.opened"))
    for ticket in ("T-SLOW", "T-FAST"):
        assert in_order([r for r in receiver.requests if r.ticket_id == ticket])
    assert order[-1] == ("T-SLOW", "ticket.updated")


async def test_parked_after_max_attempts_shown_by_the_api_and_retried_by_an_operator(
    webhook_central: WebhookCentral, receiver: Receiver
) -> None:
    central = await webhook_central(max_attempts=3)
    receiver.default = 500
    publish(central, "opened", "T-PARK")
    await wait_for(central, parked=1)
    publish(central, "updated", "T-PARK", status="acknowledged")
    await wait_for(central, parked=1, pending=1)
    await asyncio.sleep(0.3)  # the update stays behind the parked delivery
    assert len(receiver.requests) == 3

    viewer = bearer(await create_token(central.store, "viewer"))
    operator = bearer(await create_token(central.store, "operator"))
    base = f"http://127.0.0.1:{central.http.port}/api/v1/webhooks"
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        page = (await http.get("/deliveries", params={"status": "parked"},
                               headers=viewer)).json()
        assert page["total"] == 1
        (parked,) = page["items"]
        assert parked["ticket_id"] == "T-PARK" and parked["event"] == "ticket.opened"
        assert parked["attempts"] == 3 and parked["last_status_code"] == 500
        assert parked["last_error"].startswith("HTTP 500")
        assert parked["next_attempt_at"] is None
        waiting = (await http.get("/deliveries", params={"status": "pending"},
                                  headers=viewer)).json()["items"]
        assert [(w["waiting_for"], w["attempts"]) for w in waiting] == [(parked["id"], 0)]
        detail = (await http.get(f"/deliveries/{parked['id']}", headers=viewer)).json()
        assert detail["ticket"]["ticket_id"] == "T-PARK"
        status = (await http.get("/status", headers=viewer)).json()
        assert status["enabled"] and status["outbox"]["parked"] == 1
        assert status["node"]["parked"] == 1 and status["node"]["failed"] == 3

        refused = await http.post(f"/deliveries/{parked['id']}/retry", headers=viewer)
        assert refused.status_code == 403
        unknown = await http.post("/deliveries/999999/retry", headers=operator)
        assert unknown.status_code == 404 and "999999" in unknown.json()["detail"]
        not_parked = await http.post(f"/deliveries/{waiting[0]['id']}/retry", headers=operator)
        assert not_parked.status_code == 409
        assert "pending" in not_parked.json()["detail"]
        assert (await http.get("/deliveries", params={"status": "nope"},
                               headers=viewer)).status_code == 422

        receiver.default = 200
        retried = await http.post(f"/deliveries/{parked['id']}/retry", headers=operator)
        assert retried.status_code == 200, retried.text
        assert retried.json()["status"] in ("pending", "delivered")
        await wait_for(central, delivered=2, parked=0, pending=0)
        again = await http.post(f"/deliveries/{parked['id']}/retry", headers=operator)
        assert again.status_code == 409 and "delivered" in again.json()["detail"]
        final = (await http.get(f"/deliveries/{parked['id']}", headers=viewer)).json()
        assert final["attempts"] == 1 and final["delivered_at"] is not None

    ok = receiver.delivered()
    assert [r.json["event"] for r in ok] == ["ticket.opened", "ticket.updated"]
    assert dispatcher_of(central).counters.parked == 1


async def test_gone_parks_at_once_and_skipping_releases_the_later_deliveries(
    webhook_central: WebhookCentral, receiver: Receiver
) -> None:
    central = await webhook_central(max_attempts=5)
    receiver.plan = [410]
    publish(central, "opened", "T-GONE")
    await wait_for(central, parked=1)
    publish(central, "updated", "T-GONE", status="dispatched")
    await wait_for(central, parked=1, pending=1)
    (parked,) = await central.store.webhook_deliveries(status="parked")
    assert parked.delivery.attempts == 1 and parked.delivery.last_status_code == 410

    operator = bearer(await create_token(central.store, "operator"))
    base = f"http://127.0.0.1:{central.http.port}/api/v1/webhooks"
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        skipped = await http.post(f"/deliveries/{parked.delivery.id}/skip", headers=operator)
        assert skipped.status_code == 200 and skipped.json()["status"] == "skipped"
        await wait_for(central, delivered=1, skipped=1, pending=0)
        assert (await http.post(f"/deliveries/{parked.delivery.id}/retry",
                                headers=operator)).status_code == 409
    assert [r.json["event"] for r in receiver.delivered()] == ["ticket.updated"]


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
async def test_openapi_document_describes_the_endpoints(
    webhook_central: WebhookCentral,
) -> None:
    central = await webhook_central()
    app = FastAPI()
    app.include_router(webhooks.router(central.api, Authenticator(central.api)),
                       prefix="/api/v1")
    document = app.openapi()
    paths = document["paths"]
    assert set(paths) == {
        "/api/v1/webhooks/status", "/api/v1/webhooks/deliveries",
        "/api/v1/webhooks/deliveries/{delivery_id}",
        "/api/v1/webhooks/deliveries/{delivery_id}/retry",
        "/api/v1/webhooks/deliveries/{delivery_id}/skip",
    }
    retry = paths["/api/v1/webhooks/deliveries/{delivery_id}/retry"]["post"]
    assert {"200", "404", "409"} <= set(retry["responses"])
    schemas = document["components"]["schemas"]
    assert {"WebhookDeliveryPage", "WebhookDeliveryOut", "WebhookDeliveryDetail",
            "WebhookStatus"} <= set(schemas)
    assert "last_error" in schemas["WebhookDeliveryOut"]["properties"]


async def test_outbox_survives_a_restart(
    webhook_central: WebhookCentral, receiver: Receiver
) -> None:
    # First node: the receiver is down (500) for one ticket and hangs for the other.
    first = await webhook_central(timeout=30.0, backoff_initial=0.05, backoff_max=0.1,
                                  max_attempts=100)
    receiver.decide = lambda r: "hang" if r.ticket_id == "T-HANG" else 500
    publish(first, "opened", "T-DOWN")
    publish(first, "updated", "T-DOWN", status="acknowledged")
    publish(first, "opened", "T-HANG")
    await until(lambda: any(r.ticket_id == "T-HANG" for r in receiver.requests))
    await until(lambda: sum(r.ticket_id == "T-DOWN" for r in receiver.requests) >= 2)
    publish(first, "resolved", "T-HANG", status="resolved")  # still queued in memory
    await first.stop()
    assert await statuses(first) == {"pending": 4, "delivered": 0, "parked": 0, "skipped": 0}
    hung = [r for r in await first.store.webhook_deliveries(ticket_id="T-HANG")
            if r.delivery.event == "ticket.opened"]
    assert hung[0].delivery.attempts == 0  # given back unsent at stop, due at once

    # A new central system on the same database delivers everything, each ticket in order.
    receiver.decide = None
    receiver.requests.clear()
    second = await webhook_central(backoff_initial=0.05, backoff_max=0.1)
    await wait_for(second, timeout=30.0, delivered=4)
    delivered = receiver.delivered()
    assert len({r.delivery for r in delivered}) == 4
    for ticket in ("T-DOWN", "T-HANG"):
        mine = [r for r in delivered if r.ticket_id == ticket]
        assert len(mine) == 2 and in_order(mine)
    assert dispatcher_of(second).counters.delivered == 4


async def test_two_dispatchers_on_one_outbox_send_each_delivery_once(
    database: Database, receiver: Receiver
) -> None:
    receiver.delay = 0.01
    settings: WebhookSettings = webhook_settings(receiver)
    other = Database(database.url)
    nodes = [Store(database, node="one"), Store(other, node="two")]
    bus = EventBus()
    dispatchers = [WebhookDispatcher(store, bus, settings, SECRET) for store in nodes]
    try:
        ids = [
            await nodes[0].enqueue_webhook(
                ticket_id=f"T{i % 8}", event="ticket.updated",
                payload={"ticket": {"ticket_id": f"T{i % 8}", "n": i}}, at=utc_now())
            for i in range(40)
        ]
        await asyncio.gather(*(d.start() for d in dispatchers))
        await until(lambda: len(receiver.requests) >= 40, timeout=30)
        await asyncio.sleep(0.2)
    finally:
        for dispatcher in dispatchers:
            await dispatcher.stop()
        await other.dispose()
    assert sorted(r.delivery for r in receiver.requests) == ids  # each exactly once
    for t in range(8):
        assert in_order([r for r in receiver.requests if r.ticket_id == f"T{t}"])
    assert sum(d.counters.delivered for d in dispatchers) == 40

