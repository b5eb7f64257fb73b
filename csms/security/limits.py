"""Abuse limits as token buckets: pure, synchronous, with the clock passed in.

A :class:`TokenBucket` holds up to ``burst`` tokens and gains ``rate`` tokens per second; each
allowed event takes one. A check is a few float operations (a few hundred nanoseconds in
CPython), so every OCPP frame can be checked. "N per minute" is a bucket of ``N`` tokens
refilled at ``N / 60`` per second: up to ``N`` at once, then one every ``60 / N`` seconds.

:class:`KeyedBuckets` keeps one bucket per client key (an address), bounded in memory.
:class:`MessageRateLimit` is the per-connection limit of the OCPP endpoint: a message bucket,
and a second bucket of refusals that ends the connection after sustained abuse.
:class:`AddressLimit` is a per-address rate with exempt networks (FTP uploads).
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from csms.settings import LimitsSettings

MAX_KEYS = 65_536
"""Clients tracked per limit; beyond it idle (full) buckets are forgotten first."""


class TokenBucket:
    """``burst`` tokens, refilled at ``rate`` per second; :meth:`take` spends one."""

    __slots__ = ("burst", "last", "rate", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate < 0 or burst < 0:
            raise ValueError("rate and burst must not be negative")
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.last = now

    def take(self, now: float) -> bool:
        """Spend one token at time ``now`` (seconds, monotonic); ``False`` when none is left."""
        tokens = self.tokens + (now - self.last) * self.rate
        if tokens > self.burst:
            tokens = self.burst
        self.last = now
        if tokens >= 1.0:
            self.tokens = tokens - 1.0
            return True
        self.tokens = tokens
        return False

    def wait(self, now: float) -> float:
        """Seconds from ``now`` until a token is available (0 when one is)."""
        tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        if tokens >= 1.0:
            return 0.0
        if self.rate <= 0:
            return math.inf
        return (1.0 - tokens) / self.rate

    def full(self, now: float) -> bool:
        """Whether the bucket has refilled completely (its client has been quiet)."""
        return self.tokens + (now - self.last) * self.rate >= self.burst


class KeyedBuckets:
    """One :class:`TokenBucket` per key (client address...), at most ``max_keys`` of them."""

    def __init__(self, rate: float, burst: float, *, max_keys: int = MAX_KEYS) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a keyed limit needs rate > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[str, TokenBucket] = {}

    @classmethod
    def per_minute(cls, count: int, *, max_keys: int = MAX_KEYS) -> KeyedBuckets:
        """``count`` events per key and minute (up to ``count`` at once)."""
        return cls(count / 60.0, float(count), max_keys=max_keys)

    def __len__(self) -> int:
        return len(self._buckets)

    def hit(self, key: str, now: float) -> float:
        """Count one event of ``key`` at ``now``: 0.0 when allowed, else the seconds to wait
        before the next one is (nothing is counted then)."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._evict(now)
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, now)
        if bucket.take(now):
            return 0.0
        return bucket.wait(now)

    def _evict(self, now: float) -> None:
        """Forget the buckets that are full again (no information lost); if that is not
        enough (a flood from many addresses), the older half (their clients start afresh)."""
        idle = [key for key, bucket in self._buckets.items() if bucket.full(now)]
        for key in idle:
            del self._buckets[key]
        if len(self._buckets) >= self.max_keys:
            for key in list(self._buckets)[: len(self._buckets) // 2 + 1]:
                del self._buckets[key]


@dataclass(frozen=True, slots=True)
class MessageRateLimit:
    """The per-connection message limit of the OCPP endpoint.

    ``per_second`` frames per second with bursts of ``burst``; after ``refusals_before_close``
    refused frames within about ``refusal_window`` seconds the connection is closed (0: never).
    """

    per_second: float
    burst: int
    refusals_before_close: int
    refusal_window: float

    def messages(self, now: float) -> TokenBucket:
        """A connection's message bucket, full."""
        return TokenBucket(self.per_second, float(self.burst), now)

    def refusals(self, now: float) -> TokenBucket | None:
        """A connection's refusal budget (empty: close the connection); ``None``: never close."""
        if self.refusals_before_close <= 0:
            return None
        budget = float(self.refusals_before_close)
        return TokenBucket(budget / self.refusal_window, budget, now)

    @classmethod
    def of(cls, settings: LimitsSettings) -> MessageRateLimit | None:
        """The limit from the ``[limits]`` settings; ``None`` when it is off (rate 0)."""
        if settings.ocpp_messages_per_second <= 0:
            return None
        return cls(
            per_second=settings.ocpp_messages_per_second,
            burst=settings.ocpp_message_burst,
            refusals_before_close=settings.ocpp_refusals_before_close,
            refusal_window=settings.ocpp_refusal_window,
        )


class Exemptions:
    """Client networks without per-address limits (``limits.exempt_networks``)."""

    def __init__(self, networks: Iterable[str] = ()) -> None:
        self.networks = tuple(ipaddress.ip_network(n, strict=False) for n in networks)
        self._known: dict[str, bool] = {}

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __contains__(self, host: object) -> bool:
        if not self.networks or not isinstance(host, str):
            return False
        found = self._known.get(host)
        if found is None:
            try:
                address = ipaddress.ip_address(host)
            except ValueError:
                found = False
            else:
                found = any(address in network for network in self.networks)
            if len(self._known) >= MAX_KEYS:
                self._known.clear()
            self._known[host] = found
        return found


class AddressLimit:
    """``count`` events per client address and minute, except for ``exempt`` networks (a
    :class:`KeyedBuckets` and :class:`Exemptions` together, for servers that take a plain
    address: the FTP upload endpoint)."""

    def __init__(self, count: int, exempt: Iterable[str] = ()) -> None:
        self.count = count
        self.buckets = per_minute(count)
        self.exempt = Exemptions(exempt)

    def hit(self, host: str | None, now: float) -> float:
        """Count one event of ``host``: 0.0 when allowed, else the seconds to wait."""
        if self.buckets is None or host is None or host in self.exempt:
            return 0.0
        return self.buckets.hit(host, now)


def per_minute(count: int) -> KeyedBuckets | None:
    """Keyed buckets for ``count`` per minute; ``None`` when the limit is off (0)."""
    return KeyedBuckets.per_minute(count) if count > 0 else None


def retry_after(seconds: float) -> int:
    """The ``Retry-After`` value (whole seconds, at least 1) for a wait of ``seconds``."""
    if math.isinf(seconds):
        return 3600
    return max(1, math.ceil(seconds))
