"""The ticket webhook: every ticket event (opened, updated, resolved) POSTed, signed, to a
field-service system; retried with backoff, parked after too many failures.

Enabled by ``webhook.url`` (``CSMS_WEBHOOK__URL``); the signing secret is required then and
comes from the environment only (``CSMS_WEBHOOK__SECRET``). Deliveries live in the
``webhook_deliveries`` outbox table (see :mod:`csms.store.webhooks`) and are listed and
retried through ``/api/v1/webhooks`` (:mod:`csms.api.webhooks`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from csms.components import Component
from csms.settings import SettingsError
from csms.webhook.dispatcher import WebhookCounters, WebhookDispatcher
from csms.webhook.signing import sign, verify

if TYPE_CHECKING:
    from csms.app import CentralSystem

EXTRA_KEY = "webhook"
"""Where the dispatcher is found in ``central.api.extras`` (counters for metrics)."""

MISSING_SECRET = (
    "webhook.url is set but no signing secret is configured: set CSMS_WEBHOOK__SECRET in the "
    "environment (a long random string shared with the receiver), or unset webhook.url"
)


def install(central: CentralSystem) -> Component | None:
    """The webhook dispatcher when ``webhook.url`` is set, else ``None``.

    Raises :class:`~csms.settings.SettingsError` when the URL is set without a secret: an
    unsigned webhook would let anyone who can reach the receiver forge tickets.
    """
    settings = central.settings.webhook
    if settings.url is None:
        return None
    secret = settings.secret.get_secret_value() if settings.secret is not None else ""
    if not secret:
        raise SettingsError(MISSING_SECRET)
    dispatcher = WebhookDispatcher(central.store, central.bus, settings, secret)
    central.api.extras[EXTRA_KEY] = dispatcher
    return dispatcher


__all__ = [
    "EXTRA_KEY",
    "WebhookCounters",
    "WebhookDispatcher",
    "install",
    "sign",
    "verify",
]
