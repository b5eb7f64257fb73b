"""The ticket webhook outbox (filled in by the webhook work)."""

from __future__ import annotations

from csms.store.base import StoreBase


class WebhookQueries(StoreBase):
    """Webhook deliveries: enqueue, claim the due ones, mark delivered, retry or park."""
