"""Chargers for the TLS tests: raw OCPP-J clients over ``ws://`` or ``wss://``."""

from __future__ import annotations

import ssl

from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from csms.app import CentralSystem


def wss_url(central: CentralSystem) -> str:
    """The ``wss://`` endpoint base of ``central`` on loopback."""
    port = central.ocpp.tls_port
    assert port is not None
    return f"wss://127.0.0.1:{port}{central.settings.ocpp.path_prefix}"


async def open_charger(
    base_url: str,
    station_id: str,
    *,
    context: ssl.SSLContext | None = None,
    headers: dict[str, str] | None = None,
    subprotocol: str = "ocpp1.6",
) -> ClientConnection:
    """Connect as ``station_id`` (TLS with ``context`` for a ``wss://`` URL)."""
    return await connect(
        f"{base_url}/{station_id}",
        subprotocols=[Subprotocol(subprotocol)],
        additional_headers=headers,
        ssl=context,
        open_timeout=5,
        close_timeout=2,
    )
