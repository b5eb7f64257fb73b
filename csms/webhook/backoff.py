"""How long a failed delivery waits before its next attempt."""

from __future__ import annotations

import random


def retry_delay(
    failures: int, initial: float, maximum: float, rng: random.Random | None = None
) -> float:
    """Seconds to wait after the ``failures``-th failed attempt (1 for the first).

    Exponential: ``initial``, then doubling, capped at ``maximum``; with "equal jitter"
    (uniformly between half that value and all of it), so that deliveries that failed
    together (the receiver was down) do not all come back at the same moment.
    """
    exponent = min(max(failures, 1) - 1, 64)
    base = min(maximum, initial * 2.0 ** exponent)
    return base / 2 + (rng or random).uniform(0.0, base / 2)
