"""Reconnect delays: exponential back-off with jitter."""

from __future__ import annotations

import random


def backoff_delay(
    failures: int, initial: float, maximum: float, rng: random.Random | None = None
) -> float:
    """Seconds to wait after ``failures`` consecutive failed attempts (1 for the first).

    The ceiling doubles from ``initial`` up to ``maximum``; the delay is drawn uniformly from
    the upper half of it ("equal jitter"), so that many nodes do not reconnect in lockstep
    and the wait still grows.
    """
    if failures < 1:
        raise ValueError("failures starts at 1")
    ceiling = min(maximum, initial * 2.0 ** min(failures - 1, 62))
    return ceiling / 2 + (rng or random).uniform(0.0, ceiling / 2)
