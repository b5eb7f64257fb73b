"""The outbox in the database (both backends): claim order, leases, parking, and claims from
two nodes that never overlap."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from csms.store import Database, Store
from csms.store.base import utc_now

LEASE = timedelta(seconds=30)


async def _enqueue(store: Store, ticket: str, event: str, at: datetime) -> int:
    return await store.enqueue_webhook(ticket_id=ticket, event=event,
                                       payload={"ticket": {"ticket_id": ticket}}, at=at)


async def test_claims_oldest_first_one_per_ticket_and_respects_the_lease(store: Store) -> None:
    now = utc_now()
    a1 = await _enqueue(store, "A", "ticket.opened", now)
    b1 = await _enqueue(store, "B", "ticket.opened", now)
    a2 = await _enqueue(store, "A", "ticket.updated", now)

    claimed = await store.claim_webhook_deliveries(now, now + LEASE)
    assert [(d.id, d.attempts) for d in claimed] == [(a1, 1), (b1, 1)]
    # Leased: nobody claims them (nor A's later delivery) before the lease ends.
    assert await store.claim_webhook_deliveries(now + LEASE / 2, now + LEASE) == []
    assert await store.next_webhook_due() == now + LEASE

    assert await store.webhook_delivered(a1, 1, at=now, status_code=204)
    (next_a,) = await store.claim_webhook_deliveries(now, now + LEASE)
    assert next_a.id == a2
    assert await store.webhook_delivered(a2, 1, at=now, status_code=200)

    # B's claim ran out (its node died): claimed again, and the old claim can no longer
    # write its result.
    (again,) = await store.claim_webhook_deliveries(now + LEASE * 2, now + LEASE * 3)
    assert (again.id, again.attempts) == (b1, 2)
    assert not await store.webhook_failed(b1, 1, error="late", status_code=500,
                                          retry_at=now)
    assert await store.webhook_delivered(b1, 2, at=now, status_code=200)
    row = await store.get_webhook_delivery(b1)
    assert row is not None and row.delivery.status == "delivered"
    assert row.delivery.last_status_code == 200


async def test_parked_delivery_holds_its_ticket_back_until_retried_or_skipped(
    store: Store,
) -> None:
    now = utc_now()
    first = await _enqueue(store, "T", "ticket.opened", now)
    second = await _enqueue(store, "T", "ticket.updated", now)
    third = await _enqueue(store, "T", "ticket.resolved", now)
    (claimed,) = await store.claim_webhook_deliveries(now, now + LEASE)
    assert await store.webhook_failed(first, claimed.attempts, error="HTTP 500",
                                      status_code=500, retry_at=None)

    assert await store.claim_webhook_deliveries(now + LEASE * 2, now + LEASE * 3) == []
    assert await store.next_webhook_due() is None  # nothing the dispatcher could send
    row = await store.get_webhook_delivery(second)
    assert row is not None and row.waiting_for == first
    assert (row.delivery.status, row.delivery.attempts) == ("pending", 0)
    assert await store.webhook_status_counts() == {
        "pending": 2, "delivered": 0, "parked": 1, "skipped": 0}

    assert not await store.retry_webhook_delivery(second, now)  # only parked ones
    assert await store.retry_webhook_delivery(first, now)
    (retried,) = await store.claim_webhook_deliveries(now, now + LEASE)
    assert (retried.id, retried.attempts) == (first, 1)
    assert await store.webhook_failed(first, 1, error="HTTP 500", status_code=500,
                                      retry_at=None)

    assert await store.skip_webhook_delivery(first)
    assert not await store.skip_webhook_delivery(first)
    (unblocked,) = await store.claim_webhook_deliveries(now, now + LEASE)
    assert unblocked.id == second
    page = await store.webhook_deliveries(ticket_id="T")
    assert [(r.delivery.id, r.waiting_for) for r in page] == [
        (third, second), (second, None), (first, None)]
    assert await store.count_webhook_deliveries(status="skipped") == 1


async def test_nodes_never_claim_the_same_delivery(database: Database) -> None:
    """Four nodes (own connection pools) drain one outbox at once: every delivery is claimed
    exactly once, and each ticket's deliveries in order."""
    others = [Database(database.url) for _ in range(3)]
    nodes = [Store(db, node=f"node-{i}") for i, db in enumerate([database, *others])]
    try:
        now = utc_now()
        tickets = 20
        ids = [await _enqueue(nodes[0], f"T{i % tickets}", "ticket.updated", now)
               for i in range(80)]
        claims: list[int] = []
        lost: list[int] = []

        async def drain(store: Store) -> None:
            # Each node keeps claiming and delivering at once, as fast as it can.
            while True:
                claimed = await store.claim_webhook_deliveries(now, now + LEASE, limit=8)
                if not claimed:
                    if await store.count_webhook_deliveries(status="pending") == 0:
                        return
                    await asyncio.sleep(0.002)
                    continue
                for delivery in claimed:
                    claims.append(delivery.id)
                    if not await store.webhook_delivered(delivery.id, delivery.attempts,
                                                         at=now, status_code=200):
                        lost.append(delivery.id)

        await asyncio.wait_for(asyncio.gather(*(drain(node) for node in nodes)), 60)
        assert sorted(claims) == ids  # each exactly once
        assert lost == []
        for t in range(tickets):
            mine = [d for d in claims if d in ids[t::tickets]]
            assert mine == sorted(mine), f"T{t} out of order: {mine}"
    finally:
        for db in others:
            await db.dispose()
