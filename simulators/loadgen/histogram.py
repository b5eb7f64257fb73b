"""A compact log-linear latency histogram (1 µs resolution at the bottom, ~3 % above 64 µs).

Values are recorded in seconds and kept as integer microseconds in buckets: below 64 µs one
bucket per microsecond, above that 32 buckets per power of two (relative width 1/32..1/64).
Anything above :data:`MAX_SECONDS` (one hour) lands in the last bucket; min, max, count and sum
are exact. Two histograms merge by adding bucket counts, so processes can report separately.
"""

from __future__ import annotations

import math
from typing import Any

SUB_BITS = 5
SUB = 1 << SUB_BITS  # 32 sub-buckets per octave
LINEAR = 2 * SUB  # values below 64 µs have a bucket each
MAX_SECONDS = 3600.0
_MAX_US = int(MAX_SECONDS * 1_000_000)


def bucket_of(us: int) -> int:
    """The bucket index of a value in whole microseconds (negative values count as 0)."""
    if us < LINEAR:
        return us if us > 0 else 0
    shift = us.bit_length() - SUB_BITS - 1
    return LINEAR + (shift - 1) * SUB + (us >> shift) - SUB


def bucket_bounds(index: int) -> tuple[int, int]:
    """``[low, high)`` of a bucket in microseconds."""
    if index < LINEAR:
        return index, index + 1
    shift = (index - LINEAR) // SUB + 1
    top = (index - LINEAR) % SUB + SUB
    return top << shift, (top + 1) << shift


BUCKETS = bucket_of(_MAX_US) + 1
QUANTILES: tuple[tuple[str, float], ...] = (
    ("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("p99_9", 0.999),
)


class Histogram:
    """Counts of values (seconds) in log-linear buckets; see the module doc."""

    __slots__ = ("count", "counts", "max_us", "min_us", "sum_us")

    def __init__(self) -> None:
        self.counts = [0] * BUCKETS
        self.count = 0
        self.sum_us = 0
        self.min_us = 0
        self.max_us = 0

    def record(self, seconds: float) -> None:
        """Add one value in seconds."""
        us = int(seconds * 1_000_000 + 0.5)
        if us < 0:
            us = 0
        if self.count == 0 or us < self.min_us:
            self.min_us = us
        if us > self.max_us:
            self.max_us = us
        self.count += 1
        self.sum_us += us
        self.counts[bucket_of(us) if us < _MAX_US else BUCKETS - 1] += 1

    def merge(self, other: Histogram) -> None:
        """Add every value of ``other`` to this histogram."""
        if other.count == 0:
            return
        if self.count == 0 or other.min_us < self.min_us:
            self.min_us = other.min_us
        self.max_us = max(self.max_us, other.max_us)
        self.count += other.count
        self.sum_us += other.sum_us
        counts = self.counts
        for index, n in enumerate(other.counts):
            if n:
                counts[index] += n

    def quantile(self, q: float) -> float | None:
        """The value (seconds) below which a fraction ``q`` of the values lie; None if empty.

        The answer is the middle of the bucket holding the value of rank ``ceil(q * count)``,
        clamped to the exact min and max.
        """
        if self.count == 0:
            return None
        rank = max(1, min(self.count, math.ceil(q * self.count - 1e-9)))
        seen = 0
        for index, n in enumerate(self.counts):
            seen += n
            if seen >= rank:
                low, high = bucket_bounds(index)
                middle = (low + high - 1) / 2
                return min(max(middle, self.min_us), self.max_us) / 1_000_000
        return self.max_us / 1_000_000  # pragma: no cover - counts add up to count

    @property
    def mean(self) -> float | None:
        """Mean in seconds (exact), None if empty."""
        return self.sum_us / self.count / 1_000_000 if self.count else None

    def to_dict(self, *, buckets: bool = True) -> dict[str, Any]:
        """JSON-serialisable summary in seconds; ``buckets`` (sparse) lets it be merged later."""
        out: dict[str, Any] = {
            "count": self.count,
            "min_s": self.min_us / 1_000_000 if self.count else None,
            "mean_s": self.mean,
            "max_s": self.max_us / 1_000_000 if self.count else None,
        }
        for name, q in QUANTILES:
            out[f"{name}_s"] = self.quantile(q)
        if buckets:
            out["buckets"] = {str(i): n for i, n in enumerate(self.counts) if n}
            out["sum_us"] = self.sum_us
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Histogram:
        """Rebuild a histogram written by :meth:`to_dict` (with buckets)."""
        hist = cls()
        for index, n in data.get("buckets", {}).items():
            hist.counts[int(index)] += int(n)
        hist.count = int(data["count"])
        hist.sum_us = int(data.get("sum_us", 0))
        if hist.count:
            hist.min_us = round(float(data["min_s"]) * 1_000_000)
            hist.max_us = round(float(data["max_s"]) * 1_000_000)
        return hist

    def __repr__(self) -> str:
        p50, p99 = self.quantile(0.5), self.quantile(0.99)
        return f"Histogram(count={self.count}, p50={p50}, p99={p99})"
