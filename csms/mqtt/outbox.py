"""The bounded, ordered buffer of MQTT messages not yet acknowledged by the broker."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, eq=False)
class Outgoing:
    """One message to publish (compared by identity: two equal events are two messages)."""

    topic: str
    payload: bytes
    retain: bool = False


class Outbox:
    """First in, first out; when full, the oldest message is dropped (and counted).

    The publisher reads :meth:`head`, publishes it and calls :meth:`acknowledge` once the
    broker confirmed it, so a message leaves the buffer only after it is safely delivered.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.dropped = 0
        """Messages dropped because the buffer was full."""
        self._items: deque[Outgoing] = deque()

    def append(self, message: Outgoing) -> None:
        """Queue ``message`` last, dropping the oldest message when the buffer is full."""
        if len(self._items) >= self.capacity:
            self._items.popleft()
            self.dropped += 1
        self._items.append(message)

    def head(self) -> Outgoing | None:
        """The oldest unacknowledged message, if any."""
        return self._items[0] if self._items else None

    def acknowledge(self, message: Outgoing) -> bool:
        """Remove ``message`` if it is still the head (it may have been dropped meanwhile)."""
        if self._items and self._items[0] is message:
            self._items.popleft()
            return True
        return False

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Outgoing]:
        """The buffered messages, oldest first (a snapshot)."""
        return iter(tuple(self._items))
