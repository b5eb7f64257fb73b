"""Parse an ``Authorization: Basic`` header (RFC 7617) as OCPP security profile 1/2 uses it."""

from __future__ import annotations

import base64
import binascii


def parse_basic_auth(header: str | None) -> tuple[str, str] | None:
    """Return ``(user, password)`` from a Basic header, or ``None`` when absent or malformed.

    The password may contain ``:``; the user (the charger identity) may not (2.0.1 A00.FR.204).
    """
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    if not sep:
        return None
    return user, password
