"""The token buckets behind every rate limit, on a clock passed in (no waiting)."""

from __future__ import annotations

import math

import pytest

from csms.security.limits import (
    AddressLimit,
    Exemptions,
    KeyedBuckets,
    MessageRateLimit,
    TokenBucket,
    retry_after,
)
from csms.settings import LimitsSettings


def test_bucket_allows_a_burst_then_the_rate() -> None:
    bucket = TokenBucket(rate=2.0, burst=3.0, now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.wait(0.0) == pytest.approx(0.5)
    assert not bucket.take(0.25)
    assert bucket.take(0.5)  # one token per 0.5 s
    assert bucket.full(10.0) and not bucket.full(0.5)
    assert [bucket.take(10.0) for _ in range(4)] == [True, True, True, False]  # burst, capped


def test_bucket_without_rate_never_refills() -> None:
    bucket = TokenBucket(rate=0.0, burst=1.0, now=0.0)
    assert bucket.take(0.0) and not bucket.take(1e9)
    assert math.isinf(bucket.wait(1e9))
    with pytest.raises(ValueError):
        TokenBucket(rate=-1.0, burst=1.0, now=0.0)


def test_keyed_buckets_are_per_key_and_bounded() -> None:
    buckets = KeyedBuckets.per_minute(2, max_keys=4)
    assert buckets.hit("a", 0.0) == 0.0 and buckets.hit("a", 0.0) == 0.0
    assert buckets.hit("a", 0.0) == pytest.approx(30.0)  # 2 per minute: one every 30 s
    assert buckets.hit("b", 0.0) == 0.0  # another client, its own bucket
    assert buckets.hit("a", 30.0) == 0.0
    for n in range(10):
        buckets.hit(f"flood-{n}", 31.0)
    assert len(buckets) <= 4
    with pytest.raises(ValueError):
        KeyedBuckets(rate=0.0, burst=1.0)


def test_eviction_forgets_idle_clients_first() -> None:
    buckets = KeyedBuckets.per_minute(1, max_keys=2)
    buckets.hit("idle", 0.0)
    buckets.hit("busy", 100.0)  # "idle" is full again by now
    buckets.hit("new", 100.0)  # evicts "idle" (no information lost), keeps "busy"
    assert buckets.hit("busy", 100.0) > 0


def test_exemptions_and_address_limit() -> None:
    exempt = Exemptions(["10.0.0.0/8", "::1"])
    assert "10.1.2.3" in exempt and "::1" in exempt
    assert "11.0.0.1" not in exempt and "not-an-address" not in exempt and None not in exempt
    limit = AddressLimit(1, ["127.0.0.1/32"])
    assert limit.hit("127.0.0.1", 0.0) == limit.hit("127.0.0.1", 0.0) == 0.0
    assert limit.hit("192.0.2.1", 0.0) == 0.0 and limit.hit("192.0.2.1", 0.0) > 0
    assert AddressLimit(0).hit("192.0.2.1", 0.0) == 0.0  # 0: off


def test_message_rate_limit_from_settings() -> None:
    assert MessageRateLimit.of(LimitsSettings(ocpp_messages_per_second=0)) is None
    limit = MessageRateLimit.of(LimitsSettings(ocpp_messages_per_second=10, ocpp_message_burst=20,
                                               ocpp_refusals_before_close=5,
                                               ocpp_refusal_window=10))
    assert limit is not None
    messages, refusals = limit.messages(0.0), limit.refusals(0.0)
    assert sum(messages.take(0.0) for _ in range(30)) == 20
    assert refusals is not None and sum(refusals.take(0.0) for _ in range(9)) == 5
    never = MessageRateLimit.of(LimitsSettings(ocpp_refusals_before_close=0))
    assert never is not None and never.refusals(0.0) is None


def test_retry_after_is_whole_seconds() -> None:
    assert retry_after(0.01) == 1 and retry_after(1.2) == 2 and retry_after(math.inf) == 3600
