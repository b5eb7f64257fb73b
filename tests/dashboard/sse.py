"""A small Server-Sent Events reader over an ``httpx`` streaming response (for the tests)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Event:
    """One event: its name and its ``data`` parsed as JSON."""

    name: str
    data: Any


class SseReader:
    """Reads events (and, when asked, comment lines) from the lines of a stream."""

    def __init__(self, lines: AsyncIterator[str]) -> None:
        self.lines = lines
        self.comments: list[str] = []

    async def next(self, timeout: float = 5.0, *, comment: bool = False) -> Event | str:
        """The next event, or with ``comment`` the next comment line (e.g. ``heartbeat``);
        fails the test after ``timeout`` seconds or when the stream ends."""
        name, data = "message", list[str]()
        async with asyncio.timeout(timeout):
            async for line in self.lines:
                if line.startswith(":"):
                    self.comments.append(line[1:].strip())
                    if comment:
                        return line[1:].strip()
                    continue
                if not line:
                    if data:
                        return Event(name, json.loads("\n".join(data)))
                    continue
                field, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if field == "event":
                    name = value
                elif field == "data":
                    data.append(value)
        raise AssertionError("the stream ended")

    async def event(self, timeout: float = 5.0) -> Event:
        """The next event (comments are collected in :attr:`comments`)."""
        item = await self.next(timeout)
        assert isinstance(item, Event)
        return item

    async def until(self, name: str, timeout: float = 5.0) -> Event:
        """Skip events up to the first one called ``name``."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            assert left > 0, f"no {name} event in time"
            event = await self.event(left)
            if event.name == name:
                return event
