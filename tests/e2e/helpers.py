"""Small helpers shared by the end-to-end tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from simulators import Station16, Station201
from simulators.base import StationBase

#: The simulated station class for each OCPP version.
STATIONS: dict[str, type[StationBase]] = {"1.6": Station16, "2.0.1": Station201}


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until ``predicate()`` is true; fail the test after ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)
