"""The signature and the backoff, on their own."""

from __future__ import annotations

import hashlib
import hmac
import random

from hypothesis import given
from hypothesis import strategies as st

from csms.webhook.backoff import retry_delay
from csms.webhook.signing import sign, verify


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body = b'{"id":1,"event":"ticket.opened"}'
    expected = hmac.new(b"s3cret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign("s3cret", 1700000000, body) == f"sha256={expected}"


def test_verify_accepts_the_signature_and_refuses_tampering_and_replays() -> None:
    body = b'{"id":7}'
    signature = sign("s3cret", 1700000000, body)
    assert verify("s3cret", "1700000000", body, signature, now=1700000100)
    assert not verify("s3cret", "1700000000", body + b" ", signature, now=1700000100)
    assert not verify("other", "1700000000", body, signature, now=1700000100)
    assert not verify("s3cret", "1700000001", body, signature, now=1700000100)
    assert not verify("s3cret", "1700000000", body, signature, now=1700000000 + 301)
    assert not verify("s3cret", "not-a-number", body, signature, now=1700000000)


@given(failures=st.integers(1, 40), initial=st.floats(0.01, 10), maximum=st.floats(0.01, 600),
       seed=st.integers(0, 2**32))
def test_backoff_doubles_is_capped_and_keeps_at_least_half(
    failures: int, initial: float, maximum: float, seed: int
) -> None:
    base = min(maximum, initial * 2 ** (failures - 1))
    delay = retry_delay(failures, initial, maximum, random.Random(seed))
    assert base / 2 <= delay <= base


def test_backoff_grows_from_initial_to_the_cap() -> None:
    top = [retry_delay(n, 1.0, 300.0, random.Random(0)) for n in range(1, 12)]
    assert 0.5 <= top[0] <= 1.0
    assert 4.0 <= top[3] <= 8.0
    assert 150.0 <= top[-1] <= 300.0
