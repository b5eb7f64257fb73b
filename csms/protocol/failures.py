"""Throttled logging of handler failures.

While a dependency is away (the database restarting), every message of every charger fails
the same way; a traceback per message would flood the logs (hundreds of lines a second at
fleet scale). :class:`FailureLog` logs the first failure of each exception type in a window
with its traceback and counts the rest, reporting the count with the next logged one.
"""

from __future__ import annotations

from time import monotonic
from typing import Any

WINDOW_SECONDS = 10.0
"""Per exception type, at most one traceback in this many seconds."""


class FailureLog:
    """Process-wide throttle: ``failure_log.report(logger, exc, **fields)`` in an except."""

    def __init__(self, window: float = WINDOW_SECONDS) -> None:
        self.window = window
        self._last: dict[type[BaseException], float] = {}
        self._suppressed: dict[type[BaseException], int] = {}

    def report(self, logger: Any, error: BaseException, **fields: Any) -> bool:
        """Log ``handler_failed`` (with the traceback) unless this exception type was logged
        within the window; True when logged."""
        kind = type(error)
        now = monotonic()
        last = self._last.get(kind)
        if last is not None and now - last < self.window:
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            return False
        self._last[kind] = now
        suppressed = self._suppressed.pop(kind, 0)
        logger.error("handler_failed", exc_info=error, suppressed_since_last=suppressed,
                     **fields)
        return True


failure_log = FailureLog()
