"""Optional parts of the central system (metrics, MQTT, webhook) plug in through one shape.

Each part has an ``install(central)`` function that subscribes to the bus, adds HTTP routers
and returns a :class:`Component` to start and stop with the central system (or ``None``).
Components start after the diagnostics runner and before the OCPP endpoint, and stop after
the OCPP endpoint (so the last events still reach them).
"""

from __future__ import annotations

from typing import Protocol


class Component(Protocol):
    """Something with an asynchronous start and stop."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...
