"""The rate limit of the open report intake: a moving window per client address."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter


@dataclass(frozen=True, slots=True)
class Refusal:
    """Over the limit: retry after ``retry_after`` seconds."""

    retry_after: int
    limit: str


class IntakeLimiter:
    """``limits`` syntax (``"10/minute"``, ``"100/hour"``, ``"5/second;100/day"``), counted
    per client address in memory (per node)."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        try:
            self._items: list[RateLimitItem] = [
                parse(part) for part in spec.split(";") if part.strip()
            ]
        except ValueError as exc:
            raise ValueError(f"invalid report rate limit {spec!r}: {exc}") from exc
        if not self._items:
            raise ValueError(f"empty report rate limit {spec!r}")
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def hit(self, client: str) -> Refusal | None:
        """Count one report from ``client``; a :class:`Refusal` (nothing counted) when it is
        over any of the limits."""
        for item in self._items:
            if not self._limiter.test(item, "reports", client):
                stats = self._limiter.get_window_stats(item, "reports", client)
                wait = max(1, math.ceil(stats.reset_time - time.time()))
                return Refusal(wait, str(item))
        for item in self._items:
            self._limiter.hit(item, "reports", client)
        return None
