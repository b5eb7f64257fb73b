"""A raw OCPP-J client for tests: sends exactly the frames it is given."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Sequence
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol


def basic_auth(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def open_raw(
    base_url: str,
    station_id: str,
    subprotocols: Sequence[str] | None = ("ocpp1.6",),
    headers: dict[str, str] | None = None,
) -> ClientConnection:
    """Connect to ``{base_url}/{station_id}`` (the id is used as given: encode it yourself)."""
    return await connect(
        f"{base_url}/{station_id}",
        subprotocols=[Subprotocol(p) for p in subprotocols] if subprotocols else None,
        additional_headers=headers,
        open_timeout=5,
    )


async def recv_json(ws: ClientConnection, timeout: float = 5.0) -> Any:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def call(ws: ClientConnection, action: str, payload: dict[str, Any],
               unique_id: str = "m1") -> Any:
    """Send a CALL and return the answer frame (a list)."""
    await ws.send(json.dumps([2, unique_id, action, payload]))
    return await recv_json(ws)


BOOT_16 = {"chargePointVendor": "RawVendor", "chargePointModel": "RawModel"}
BOOT_201 = {"chargingStation": {"vendorName": "RawVendor", "model": "RawModel"},
            "reason": "PowerUp"}
