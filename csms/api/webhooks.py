"""``/api/v1/webhooks``: the ticket webhook outbox, for operators.

Viewers list and read deliveries and the webhook's status; operators retry a parked delivery
(it is sent again at once, attempts counted from zero) or skip it (it is never sent; the
later deliveries of its ticket, held back behind it, go out).
"""

from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, HTTPException, Path, Query, status
from pydantic import BaseModel, Field

from csms.api.auth import Authenticator, Principal, depends
from csms.api.context import ApiContext
from csms.api.schemas import MAX_ID, MAX_OFFSET
from csms.api.tokens import Role
from csms.logs import get_logger
from csms.store.base import utc_now
from csms.store.webhooks import PARKED, PENDING, DeliveryRow
from csms.webhook import EXTRA_KEY, WebhookDispatcher

log = get_logger("csms.api.webhooks")

DeliveryStatus = Literal["pending", "delivered", "parked", "skipped"]
DeliveryId = Annotated[int, Path(ge=1, description="The delivery id.")]
# No ``from __future__ import annotations`` here: FastAPI reads the endpoints' annotations,
# which use aliases built inside ``router`` (the roles need the authenticator).


class WebhookDeliveryOut(BaseModel):
    """One ticket event in the webhook outbox."""

    id: int = Field(description="Also sent as X-CSMS-Delivery and as the body's id.")
    ticket_id: str
    event: str = Field(description="ticket.opened, ticket.updated or ticket.resolved")
    status: DeliveryStatus
    attempts: int = Field(description="POST attempts made (since the last retry).")
    next_attempt_at: datetime | None = Field(
        description="When a pending delivery is tried next (null once it is not pending).")
    waiting_for: int | None = Field(
        description="The earlier pending or parked delivery of the same ticket that holds "
                    "this one back (deliveries of a ticket go out in order).")
    last_error: str | None
    last_status_code: int | None
    created_at: datetime
    delivered_at: datetime | None


class WebhookDeliveryDetail(WebhookDeliveryOut):
    """A delivery with what it sends."""

    change: str | None = Field(description="The note of the change, when there is one.")
    ticket: dict[str, Any] = Field(description="The ticket as it was at the event.")


class WebhookDeliveryPage(BaseModel):
    """A page of deliveries, newest first."""

    items: list[WebhookDeliveryOut]
    total: int
    limit: int
    offset: int


class WebhookStatus(BaseModel):
    """Whether the webhook is on, where it posts, and the outbox at a glance."""

    enabled: bool = Field(description="webhook.url is set on this node.")
    target: str | None = Field(description="Scheme, host and path of the URL (no query).")
    outbox: dict[str, int] = Field(description="Deliveries per status (all nodes).")
    node: dict[str, int] | None = Field(
        description="This node since start: enqueued, delivered, failed attempts, parked.")


def _summary(row: DeliveryRow) -> dict[str, Any]:
    delivery = row.delivery
    return {
        "id": delivery.id,
        "ticket_id": delivery.ticket_id,
        "event": delivery.event,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "next_attempt_at": delivery.next_attempt_at if delivery.status == PENDING else None,
        "waiting_for": row.waiting_for,
        "last_error": delivery.last_error,
        "last_status_code": delivery.last_status_code,
        "created_at": delivery.created_at,
        "delivered_at": delivery.delivered_at,
    }


def _detail(row: DeliveryRow) -> WebhookDeliveryDetail:
    payload = row.delivery.payload
    ticket = payload.get("ticket")
    change = payload.get("change")
    return WebhookDeliveryDetail(
        **_summary(row), change=change if isinstance(change, str) else None,
        ticket=ticket if isinstance(ticket, dict) else {},
    )


def _target(url: str | None) -> str | None:
    if url is None:
        return None
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def router(ctx: ApiContext, auth: Authenticator) -> APIRouter:
    """The webhooks endpoints under ``/api/v1``."""
    api = APIRouter(prefix="/webhooks", tags=["webhooks"])
    Viewer = Annotated[Principal, depends(auth, Role.VIEWER)]
    Operator = Annotated[Principal, depends(auth, Role.OPERATOR)]

    def dispatcher() -> WebhookDispatcher | None:
        component = ctx.extras.get(EXTRA_KEY)
        return component if isinstance(component, WebhookDispatcher) else None

    async def load(delivery_id: int) -> DeliveryRow:
        row = (await ctx.store.get_webhook_delivery(delivery_id)
               if 0 < delivery_id <= MAX_ID else None)
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND,
                                detail=f"no webhook delivery {delivery_id}")
        return row

    async def parked(delivery_id: int, verb: str) -> DeliveryRow:
        row = await load(delivery_id)
        if row.delivery.status != PARKED:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                detail=f"delivery {delivery_id} is {row.delivery.status}; only parked "
                       f"deliveries can be {verb}",
            )
        return row

    @api.get("/status", response_model=WebhookStatus, summary="Webhook status")
    async def webhook_status(_: Viewer) -> WebhookStatus:
        """Whether the webhook is configured, and the outbox by status."""
        component = dispatcher()
        counters = component.counters if component is not None else None
        return WebhookStatus(
            enabled=ctx.settings.webhook.url is not None,
            target=_target(ctx.settings.webhook.url),
            outbox=await ctx.store.webhook_status_counts(),
            node=None if counters is None else {
                "enqueued": counters.enqueued, "delivered": counters.delivered,
                "failed": counters.failed, "parked": counters.parked,
            },
        )

    @api.get("/deliveries", response_model=WebhookDeliveryPage, summary="List deliveries")
    async def list_deliveries(
        _: Viewer,
        status_: Annotated[DeliveryStatus | None, Query(alias="status")] = None,
        ticket_id: Annotated[str | None, Query(max_length=255)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    ) -> WebhookDeliveryPage:
        """Deliveries newest first; ``status=parked`` lists the ones that need an operator."""
        rows = await ctx.store.webhook_deliveries(status=status_, ticket_id=ticket_id,
                                                  limit=limit, offset=offset)
        total = await ctx.store.count_webhook_deliveries(status=status_, ticket_id=ticket_id)
        return WebhookDeliveryPage(
            items=[WebhookDeliveryOut(**_summary(row)) for row in rows],
            total=total, limit=limit, offset=offset,
        )

    @api.get("/deliveries/{delivery_id}", response_model=WebhookDeliveryDetail,
             summary="One delivery", responses={404: {"description": "Unknown delivery"}})
    async def get_delivery(delivery_id: DeliveryId, _: Viewer) -> WebhookDeliveryDetail:
        """A delivery with the ticket it sends."""
        return _detail(await load(delivery_id))

    @api.post("/deliveries/{delivery_id}/retry", response_model=WebhookDeliveryDetail,
              summary="Retry a parked delivery",
              responses={404: {"description": "Unknown delivery"},
                         409: {"description": "The delivery is not parked"}})
    async def retry_delivery(delivery_id: DeliveryId, who: Operator) -> WebhookDeliveryDetail:
        """Parked -> pending, due now, attempts from zero. The later deliveries of the same
        ticket follow once it is delivered."""
        await parked(delivery_id, "retried")
        if not await ctx.store.retry_webhook_delivery(delivery_id, utc_now()):
            await parked(delivery_id, "retried")  # changed meanwhile: say how
        log.info("webhook_retry_requested", delivery=delivery_id, by=who.label)
        component = dispatcher()
        if component is not None:
            component.wake()
        return _detail(await load(delivery_id))

    @api.post("/deliveries/{delivery_id}/skip", response_model=WebhookDeliveryDetail,
              summary="Skip a parked delivery",
              responses={404: {"description": "Unknown delivery"},
                         409: {"description": "The delivery is not parked"}})
    async def skip_delivery(delivery_id: DeliveryId, who: Operator) -> WebhookDeliveryDetail:
        """Parked -> skipped: never sent; the later deliveries of its ticket go out (each
        carries the whole ticket, so the receiver still ends up with the current state)."""
        await parked(delivery_id, "skipped")
        if not await ctx.store.skip_webhook_delivery(delivery_id):
            await parked(delivery_id, "skipped")
        log.info("webhook_skip_requested", delivery=delivery_id, by=who.label)
        component = dispatcher()
        if component is not None:
            component.wake()
        return _detail(await load(delivery_id))

    return api
