"""The ticket webhook outbox: one row per ticket event to deliver, retried until delivered.

Statuses: ``pending`` (waiting for its next attempt, or being sent), ``delivered``, ``parked``
(gave up after too many failures; an operator retries or skips it) and ``skipped`` (an
operator gave up on a parked delivery).

Several CSMS nodes may share one database. A node *claims* a due delivery with one
conditional ``UPDATE`` (still pending, due, not behind an earlier undelivered delivery of the
same ticket) that pushes ``next_attempt_at`` forward by a lease and counts the attempt; only
the node whose update matched the row sends it. The result is written back only if the row
is still in that claim (same ``attempts``), so a node whose lease ran out cannot overwrite the
outcome of the node that took over. The same statements work on SQLite (one writer at a time)
and PostgreSQL (row locks; a blocked ``UPDATE`` re-checks its ``WHERE`` on the new row).

Per ticket, deliveries go out strictly in creation (id) order: a delivery is not claimed while
an earlier one of the same ticket is ``pending`` or ``parked``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, insert, select, update
from sqlalchemy.orm import aliased

from csms.store.base import StoreBase
from csms.store.models import WebhookDelivery
from csms.store.types import as_utc

PENDING, DELIVERED, PARKED, SKIPPED = "pending", "delivered", "parked", "skipped"
DELIVERY_STATUSES = (PENDING, DELIVERED, PARKED, SKIPPED)
BLOCKING_STATUSES = (PENDING, PARKED)
"""An earlier delivery of the same ticket in one of these holds the later ones back."""


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    """A delivery as listed: the row and the earlier undelivered delivery it waits for."""

    delivery: WebhookDelivery
    waiting_for: int | None


def _earlier_blocking() -> ColumnElement[bool]:
    """True when an earlier delivery of the same ticket is pending or parked."""
    earlier = aliased(WebhookDelivery)
    return exists().where(
        earlier.ticket_id == WebhookDelivery.ticket_id,
        earlier.id < WebhookDelivery.id,
        earlier.status.in_(BLOCKING_STATUSES),
    )


def _waiting_for() -> Any:
    """The earliest earlier pending or parked delivery of the same ticket (a scalar)."""
    earlier = aliased(WebhookDelivery)
    return (
        select(func.min(earlier.id))
        .where(
            earlier.ticket_id == WebhookDelivery.ticket_id,
            earlier.id < WebhookDelivery.id,
            earlier.status.in_(BLOCKING_STATUSES),
        )
        .scalar_subquery()
    )


def _claimable(now: datetime) -> ColumnElement[bool]:
    return and_(
        WebhookDelivery.status == PENDING,
        WebhookDelivery.next_attempt_at <= as_utc(now),
        ~_earlier_blocking(),
    )


def _filters(status: str | None, ticket_id: str | None) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if status is not None:
        conditions.append(WebhookDelivery.status == status)
    if ticket_id is not None:
        conditions.append(WebhookDelivery.ticket_id == ticket_id)
    return conditions


class WebhookQueries(StoreBase):
    """Webhook deliveries: enqueue, claim the due ones, mark delivered, retry or park."""

    async def enqueue_webhook(
        self, *, ticket_id: str, event: str, payload: dict[str, Any], at: datetime
    ) -> int:
        """Add a pending delivery, due at once; returns its id."""
        async with self.db.write_session() as session:
            result = await session.execute(
                insert(WebhookDelivery).values(
                    ticket_id=ticket_id, event=event, payload=payload, status=PENDING,
                    attempts=0, next_attempt_at=as_utc(at), created_at=as_utc(at),
                ).returning(WebhookDelivery.id)
            )
            return int(result.scalar_one())

    async def claim_webhook_deliveries(
        self, now: datetime, lease_until: datetime, *, limit: int = 16
    ) -> list[WebhookDelivery]:
        """Claim up to ``limit`` due deliveries (oldest first, at most one per ticket).

        Each claimed row has ``attempts`` counted up and ``next_attempt_at`` set to
        ``lease_until``: no other node claims it before then. The returned rows carry the
        new ``attempts``, which the result updates must quote.
        """
        claimed: list[WebhookDelivery] = []
        async with self.db.write_session() as session:
            candidates = (await session.scalars(
                select(WebhookDelivery.id).where(_claimable(now))
                .order_by(WebhookDelivery.id).limit(limit)
            )).all()
            for delivery_id in candidates:
                result = await session.scalars(
                    update(WebhookDelivery)
                    .where(WebhookDelivery.id == delivery_id, _claimable(now))
                    .values(attempts=WebhookDelivery.attempts + 1,
                            next_attempt_at=as_utc(lease_until))
                    .returning(WebhookDelivery)
                    .execution_options(synchronize_session=False)
                )
                row = result.one_or_none()
                if row is not None:
                    claimed.append(row)
        return claimed

    async def next_webhook_due(self) -> datetime | None:
        """When the earliest pending delivery that is not held back falls due."""
        query = select(func.min(WebhookDelivery.next_attempt_at)).where(
            WebhookDelivery.status == PENDING, ~_earlier_blocking()
        )
        async with self.db.read_session() as session:
            value = (await session.execute(query)).scalar_one_or_none()
        return as_utc(value) if isinstance(value, datetime) else None

    async def webhook_delivered(
        self, delivery_id: int, attempt: int, *, at: datetime, status_code: int
    ) -> bool:
        """Mark a claimed delivery delivered; False when the claim was lost meanwhile."""
        return await self._settle(
            delivery_id, attempt,
            status=DELIVERED, delivered_at=as_utc(at), last_status_code=status_code,
        )

    async def webhook_failed(
        self, delivery_id: int, attempt: int, *, error: str, status_code: int | None,
        retry_at: datetime | None,
    ) -> bool:
        """Record a failed attempt: due again at ``retry_at``, or parked when it is ``None``.

        False when the claim was lost meanwhile (another node took the delivery over).
        """
        values: dict[str, Any] = {"last_error": error[:2000], "last_status_code": status_code}
        if retry_at is None:
            values["status"] = PARKED
        else:
            values["next_attempt_at"] = as_utc(retry_at)
        return await self._settle(delivery_id, attempt, **values)

    async def release_webhook_claim(self, delivery_id: int, attempt: int, at: datetime) -> bool:
        """Give a claimed delivery back unsent (shutdown): due at ``at``, attempt uncounted."""
        return await self._settle(delivery_id, attempt, attempts=attempt - 1,
                                  next_attempt_at=as_utc(at))

    async def _settle(self, delivery_id: int, attempt: int, **values: Any) -> bool:
        async with self.db.write_session() as session:
            result = await session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == PENDING,
                       WebhookDelivery.attempts == attempt)
                .values(**values)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def retry_webhook_delivery(self, delivery_id: int, at: datetime) -> bool:
        """Parked -> pending, due at ``at``, attempts reset; False when not parked."""
        return await self._move(delivery_id, (PARKED,), status=PENDING, attempts=0,
                                next_attempt_at=as_utc(at))

    async def skip_webhook_delivery(self, delivery_id: int) -> bool:
        """Parked -> skipped (never sent; later deliveries of its ticket go on)."""
        return await self._move(delivery_id, (PARKED,), status=SKIPPED)

    async def _move(self, delivery_id: int, current: Iterable[str], **values: Any) -> bool:
        async with self.db.write_session() as session:
            result = await session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == delivery_id,
                       WebhookDelivery.status.in_(tuple(current)))
                .values(**values)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def webhook_deliveries(
        self, *, status: str | None = None, ticket_id: str | None = None,
        limit: int = 50, offset: int = 0,
    ) -> list[DeliveryRow]:
        """Deliveries, newest first, optionally of one status and one ticket."""
        query = (
            select(WebhookDelivery, _waiting_for())
            .where(*_filters(status, ticket_id))
            .order_by(WebhookDelivery.id.desc()).limit(limit).offset(offset)
        )
        async with self.db.read_session() as session:
            rows = (await session.execute(query)).all()
        return [DeliveryRow(row[0], row[1]) for row in rows]

    async def count_webhook_deliveries(
        self, *, status: str | None = None, ticket_id: str | None = None
    ) -> int:
        """How many deliveries match (for paging)."""
        query = select(func.count()).select_from(WebhookDelivery).where(
            *_filters(status, ticket_id))
        async with self.db.read_session() as session:
            return int((await session.execute(query)).scalar_one())

    async def get_webhook_delivery(self, delivery_id: int) -> DeliveryRow | None:
        """One delivery, ``None`` when unknown."""
        query = select(WebhookDelivery, _waiting_for()).where(WebhookDelivery.id == delivery_id)
        async with self.db.read_session() as session:
            row = (await session.execute(query)).one_or_none()
        return None if row is None else DeliveryRow(row[0], row[1])

    async def webhook_status_counts(self) -> dict[str, int]:
        """Deliveries per status (every status present, zero included)."""
        query = select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)
        async with self.db.read_session() as session:
            rows = (await session.execute(query)).all()
        counts = dict.fromkeys(DELIVERY_STATUSES, 0)
        counts.update({str(status): int(count) for status, count in rows})
        return counts
