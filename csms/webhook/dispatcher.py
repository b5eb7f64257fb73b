"""The webhook component: ticket notices into the outbox, due deliveries out to the URL.

Two tasks:

- the *intake* takes ticket notices from the bus (through an unbounded in-memory queue: the
  bus subscriber must not block) and writes one outbox row per notice, retrying while the
  database is unavailable, so that no notice is lost while the process runs;
- the *dispatcher* claims due deliveries (see :mod:`csms.store.webhooks` for the claim that
  lets several nodes share one outbox), POSTs them, and records the outcome: delivered, due
  again after a backoff, or parked after ``max_attempts`` failures (410 Gone parks at once).

It wakes up as soon as a notice is stored or an operator retries a delivery on this node, and
otherwise polls at least every :data:`POLL_INTERVAL` seconds (rows written by other nodes).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from csms.bus import EventBus, Notice
from csms.logs import get_logger
from csms.settings import WebhookSettings
from csms.store import Store
from csms.store.base import utc_now
from csms.store.models import WebhookDelivery
from csms.tasks import cancel_and_wait
from csms.webhook.backoff import retry_delay
from csms.webhook.payload import EVENTS, outbox_entry, request_body, request_headers

log = get_logger("csms.webhook")

POLL_INTERVAL = 5.0
"""Longest sleep of the dispatcher (picks up deliveries other nodes enqueued or retried)."""
LEASE_MARGIN = 60.0
"""Seconds a claim outlives the request timeout (result write, clock skew between nodes)."""
CONCURRENCY = 16
"""Deliveries in flight at once on this node (at most one per ticket)."""
STOP_FLUSH = 10.0
"""Seconds ``stop`` waits for queued notices to reach the outbox."""
ERROR_PAUSE = 2.0
"""Pause after an unexpected error of a dispatch round (database away...)."""
SNIPPET = 300
"""Characters of a failed response's body kept in ``last_error``."""


@dataclass(slots=True)
class WebhookCounters:
    """What this node did since it started (for metrics)."""

    enqueued: int = 0
    delivered: int = 0
    failed: int = 0
    """Failed attempts, the ones that led to parking included."""
    parked: int = 0


class WebhookDispatcher:
    """Delivers ticket events to ``settings.url``, signed with ``secret``."""

    def __init__(
        self,
        store: Store,
        bus: EventBus,
        settings: WebhookSettings,
        secret: str,
        *,
        clock: Callable[[], datetime] = utc_now,
        rng: random.Random | None = None,
    ) -> None:
        if settings.url is None:
            raise ValueError("webhook url is not set")
        self.store = store
        self.settings = settings
        self.url: str = settings.url
        self._secret = secret
        self._clock = clock
        self._rng = rng or random.Random()
        self.counters = WebhookCounters()
        self._inbox: asyncio.Queue[Notice] = asyncio.Queue()
        self._wake = asyncio.Event()
        self._client: httpx.AsyncClient | None = None
        self._intake: asyncio.Task[None] | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        # Subscribed from the start: notices published before start() wait in the inbox.
        self._unsubscribe: Callable[[], None] | None = bus.subscribe(self._on_notice)

    @property
    def queued(self) -> int:
        """Notices received but not yet written to the outbox."""
        return self._inbox.qsize()

    def wake(self) -> None:
        """Look for due deliveries now (after an enqueue or an operator's retry)."""
        self._wake.set()

    async def start(self) -> None:
        """Start the intake and the dispatcher."""
        self._client = httpx.AsyncClient(timeout=self.settings.timeout, follow_redirects=False)
        self._intake = asyncio.create_task(self._run_intake(), name="webhook-intake")
        self._dispatcher = asyncio.create_task(self._run_dispatcher(), name="webhook-dispatch")
        log.info("webhook_started", url=self.url, max_attempts=self.settings.max_attempts)

    async def stop(self) -> None:
        """Store the queued notices (bounded wait), then stop; deliveries in flight are given
        back to the outbox unsent and go out on the next start (or from another node)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._intake is not None and not self._intake.done():
            try:
                await asyncio.wait_for(self._inbox.join(), STOP_FLUSH)
            except TimeoutError:
                log.error("webhook_notices_lost", count=self._inbox.qsize())
        tasks = [t for t in (self._dispatcher, self._intake, *self._in_flight) if t is not None]
        await cancel_and_wait(*tasks)
        self._dispatcher = self._intake = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # -- intake -----------------------------------------------------------------------------

    def _on_notice(self, notice: Notice) -> None:
        if notice.origin is not None:  # another node's ticket: that node enqueues it
            return
        if notice.kind in EVENTS and outbox_entry(notice) is not None:
            self._inbox.put_nowait(notice)

    async def _run_intake(self) -> None:
        while True:
            notice = await self._inbox.get()
            try:
                await self._store_notice(notice)
            finally:
                self._inbox.task_done()

    async def _store_notice(self, notice: Notice) -> None:
        entry = outbox_entry(notice)
        if entry is None:
            return
        ticket_id, event, payload = entry
        pause = 0.1
        while True:
            try:
                delivery_id = await self.store.enqueue_webhook(
                    ticket_id=ticket_id, event=event, payload=payload, at=self._clock())
                break
            except Exception:
                log.exception("webhook_enqueue_failed", ticket_id=ticket_id, webhook_event=event,
                              retry_in=pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, POLL_INTERVAL)
        self.counters.enqueued += 1
        log.debug("webhook_enqueued", delivery=delivery_id, ticket_id=ticket_id,
                  webhook_event=event)
        self.wake()

    # -- dispatcher -------------------------------------------------------------------------

    async def _run_dispatcher(self) -> None:
        while True:
            self._wake.clear()
            try:
                delay = await self._round()
            except Exception:
                log.exception("webhook_dispatch_failed")
                delay = ERROR_PAUSE
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)

    async def _round(self) -> float:
        """Start sending what is due (within :data:`CONCURRENCY`); return how long to sleep
        before the next round (a finished delivery wakes the dispatcher earlier)."""
        free = CONCURRENCY - len(self._in_flight)
        if free <= 0:
            return POLL_INTERVAL
        now = self._clock()
        lease_until = now + timedelta(seconds=self.settings.timeout + LEASE_MARGIN)
        claimed = await self.store.claim_webhook_deliveries(now, lease_until, limit=free)
        for delivery in claimed:
            task = asyncio.create_task(self._attempt(delivery),
                                       name=f"webhook-delivery-{delivery.id}")
            self._in_flight.add(task)
            task.add_done_callback(self._finished)
        if len(claimed) == free:
            return POLL_INTERVAL  # full: the next finished delivery wakes us
        due = await self.store.next_webhook_due()
        if due is None:
            return POLL_INTERVAL
        return min(POLL_INTERVAL, max(0.01, (due - self._clock()).total_seconds()))

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self.wake()  # the ticket's next delivery may be due now

    async def _attempt(self, delivery: WebhookDelivery) -> None:
        try:
            await self._deliver(delivery)
        except Exception:
            # The outcome could not be written (database away): the claim runs out and the
            # delivery is tried again then.
            log.exception("webhook_result_not_stored", delivery=delivery.id)

    async def _deliver(self, delivery: WebhookDelivery) -> None:
        """One attempt at one claimed delivery, its outcome written back."""
        client = self._client
        assert client is not None
        body = request_body(delivery)
        headers = request_headers(delivery, body, self._secret, int(time.time()))
        try:
            async with asyncio.timeout(self.settings.timeout):
                async with client.stream("POST", self.url, content=body,
                                         headers=headers) as response:
                    snippet = await _read_snippet(response)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await self.store.release_webhook_claim(delivery.id, delivery.attempts,
                                                       self._clock())
            raise
        except (TimeoutError, httpx.TimeoutException):
            await self._failed(delivery, f"timeout after {self.settings.timeout:g} s", None)
            return
        except Exception as exc:
            await self._failed(delivery, f"{type(exc).__name__}: {exc}", None)
            return
        code = response.status_code
        if 200 <= code < 300:
            await self._delivered(delivery, code)
            return
        reason = f"HTTP {code} {response.reason_phrase}".rstrip()
        error = f"{reason}: {snippet}" if snippet else reason
        await self._failed(delivery, error, code, park=code == 410)

    async def _delivered(self, delivery: WebhookDelivery, code: int) -> None:
        kept = await self.store.webhook_delivered(delivery.id, delivery.attempts,
                                                  at=self._clock(), status_code=code)
        self.counters.delivered += 1
        log.info("webhook_delivered", delivery=delivery.id, ticket_id=delivery.ticket_id,
                 webhook_event=delivery.event, attempt=delivery.attempts, status_code=code)
        if not kept:  # sent after the claim ran out: another node may send it again
            log.warning("webhook_claim_lost", delivery=delivery.id, attempt=delivery.attempts)

    async def _failed(
        self, delivery: WebhookDelivery, error: str, code: int | None, *, park: bool = False
    ) -> None:
        self.counters.failed += 1
        park = park or delivery.attempts >= self.settings.max_attempts
        retry_at: datetime | None = None
        if not park:
            delay = retry_delay(delivery.attempts, self.settings.backoff_initial,
                                self.settings.backoff_max, self._rng)
            retry_at = self._clock() + timedelta(seconds=delay)
        kept = await self.store.webhook_failed(delivery.id, delivery.attempts, error=error,
                                               status_code=code, retry_at=retry_at)
        fields: dict[str, Any] = {
            "delivery": delivery.id, "ticket_id": delivery.ticket_id,
            "webhook_event": delivery.event, "attempt": delivery.attempts, "error": error,
        }
        if not kept:
            log.warning("webhook_claim_lost", **fields)
        elif park:
            self.counters.parked += 1
            log.warning("webhook_parked", **fields)
        else:
            log.info("webhook_retry_scheduled", retry_at=retry_at, **fields)


async def _read_snippet(response: httpx.Response) -> str:
    """The start of the response body (a receiver's error message), never all of it."""
    if 200 <= response.status_code < 300:
        return ""
    data = b""
    async for chunk in response.aiter_bytes():
        data += chunk
        if len(data) >= SNIPPET:
            break
    return data[:SNIPPET].decode(errors="replace").strip()
