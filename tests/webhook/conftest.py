"""Webhook fixtures: a recording receiver, central systems that post to it, API tokens."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from pydantic import SecretStr

from csms.api import tokens
from csms.app import CentralSystem
from csms.settings import WebhookSettings
from csms.store import Store
from csms.webhook import WebhookDispatcher
from tests.conftest import MakeCentral
from tests.webhook.receiver import Received, Receiver

SECRET = "test-webhook-secret-0123456789"

WebhookCentral = Callable[..., Awaitable[CentralSystem]]


def verify_signature(request: Received, secret: str = SECRET) -> bool:
    """The receiver's check, written independently of ``csms.webhook.signing``."""
    timestamp = request.headers["x-csms-timestamp"]
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + request.body,
                        hashlib.sha256).hexdigest()
    return hmac.compare_digest("sha256=" + expected, request.headers["x-csms-signature"])


def webhook_settings(receiver: Receiver, **overrides: Any) -> WebhookSettings:
    """Tiny backoff, an attempt timeout that a loaded CI machine does not hit by accident
    (tests of timeouts set their own), the receiver's URL, the test secret."""
    options: dict[str, Any] = {
        "url": receiver.url, "secret": SecretStr(SECRET), "timeout": 5.0,
        "max_attempts": 5, "backoff_initial": 0.05, "backoff_max": 0.2,
    }
    options.update(overrides)
    return WebhookSettings(**options)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A running receiver (answers 200 unless told otherwise)."""
    server = Receiver()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def webhook_central(receiver: Receiver, make_central: MakeCentral) -> WebhookCentral:
    """Start a central system posting to ``receiver``; keywords override webhook settings."""

    async def factory(**overrides: Any) -> CentralSystem:
        return await make_central(diagnostics_time_scale=0.004,
                                  settings={"webhook": webhook_settings(receiver, **overrides)})

    return factory


def dispatcher_of(central: CentralSystem) -> WebhookDispatcher:
    """The central system's webhook component."""
    component = central.api.extras["webhook"]
    assert isinstance(component, WebhookDispatcher)
    return component


async def create_token(store: Store, role: str) -> str:
    """A new API token of ``role``; its value."""
    new = tokens.generate()
    await store.create_token(token_id=new.token_id, name=f"webhook-{role}", role=role,
                             secret_hash=new.secret_hash)
    return new.value


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
