"""What goes into the outbox for a ticket notice, and the HTTP request built from a row."""

from __future__ import annotations

import json
from typing import Any

from csms.bus import Notice, Topic
from csms.store.models import WebhookDelivery
from csms.webhook.signing import sign

EVENTS = {"opened": "ticket.opened", "updated": "ticket.updated", "resolved": "ticket.resolved"}
"""Ticket notice kind -> webhook event name."""

USER_AGENT = "csms-webhook/1"


def outbox_entry(notice: Notice) -> tuple[str, str, dict[str, Any]] | None:
    """``(ticket_id, event, payload)`` for a ticket notice; ``None`` for anything else.

    The payload keeps the ticket as published and the note of the change (``change``) beside
    it rather than inside the ticket.
    """
    event = EVENTS.get(notice.kind) if notice.topic is Topic.TICKET else None
    if event is None:
        return None
    ticket = dict(notice.data)
    change = ticket.pop("change", None)
    ticket_id = ticket.get("ticket_id")
    if not isinstance(ticket_id, str) or not ticket_id:
        return None
    return ticket_id, event, {"ticket": ticket, "change": change}


def request_body(delivery: WebhookDelivery) -> bytes:
    """The JSON body: ``{"id", "event", "created_at", "change", "ticket"}`` (compact UTF-8)."""
    payload = delivery.payload
    document = {
        "id": delivery.id,
        "event": delivery.event,
        "created_at": delivery.created_at.isoformat(),
        "change": payload.get("change"),
        "ticket": payload.get("ticket", {}),
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def request_headers(
    delivery: WebhookDelivery, body: bytes, secret: str, timestamp: int
) -> dict[str, str]:
    """Content type, event, delivery id, timestamp and signature headers."""
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-CSMS-Event": delivery.event,
        "X-CSMS-Delivery": str(delivery.id),
        "X-CSMS-Attempt": str(delivery.attempts),
        "X-CSMS-Timestamp": str(timestamp),
        "X-CSMS-Signature": sign(secret, timestamp, body),
    }
