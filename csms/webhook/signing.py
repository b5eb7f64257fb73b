"""The webhook signature: HMAC-SHA256 over ``"{timestamp}.{body}"`` with the shared secret.

A receiver recomputes it from the raw request body and the ``X-CSMS-Timestamp`` header,
compares in constant time, and refuses old timestamps (replays). :func:`verify` is the
reference implementation; the README shows the same in a few lines for receivers.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SCHEME = "sha256="
DEFAULT_TOLERANCE = 300.0
"""Seconds a timestamp may differ from the receiver's clock (replay window)."""


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def sign(secret: str | bytes, timestamp: int, body: bytes) -> str:
    """The ``X-CSMS-Signature`` value: ``sha256=`` and the hex HMAC of ``timestamp.body``."""
    digest = hmac.new(_key(secret), f"{timestamp}.".encode() + body, hashlib.sha256)
    return SCHEME + digest.hexdigest()


def verify(
    secret: str | bytes, timestamp: str, body: bytes, signature: str, *,
    now: float | None = None, tolerance: float = DEFAULT_TOLERANCE,
) -> bool:
    """Whether ``signature`` (the header value) signs ``body`` at ``timestamp`` (the header
    value) and the timestamp is within ``tolerance`` seconds of ``now``."""
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, sent_at, body), signature)
