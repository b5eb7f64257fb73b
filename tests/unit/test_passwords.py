"""Charger passwords: scrypt hashes, Basic header parsing (security profile 1/2)."""

from __future__ import annotations

import base64

import pytest

from csms.security.basic_auth import parse_basic_auth
from csms.security.passwords import (
    InvalidHash,
    generate_password,
    hash_password,
    verify_password,
)


def test_hash_and_verify() -> None:
    stored = hash_password("correct horse battery")
    assert stored.startswith("scrypt$")
    assert "correct" not in stored
    assert verify_password("correct horse battery", stored)
    assert verify_password("correct horse battery", stored)  # cached path
    assert not verify_password("correct horse batterx", stored)
    assert hash_password("same") != hash_password("same")  # salted


def test_invalid_hash_is_an_error() -> None:
    with pytest.raises(InvalidHash):
        verify_password("x", "md5$abc")


def test_generated_password_length() -> None:
    password = generate_password()
    assert 16 <= len(password) <= 40
    assert generate_password() != password


def _header(raw: str) -> str:
    return "Basic " + base64.b64encode(raw.encode()).decode()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (_header("CP1:pw"), ("CP1", "pw")),
        (_header("CP1:pw:with:colons"), ("CP1", "pw:with:colons")),
        ("basic " + base64.b64encode(b"CP1:").decode(), ("CP1", "")),
        (None, None),
        ("", None),
        ("Bearer abc", None),
        ("Basic", None),
        ("Basic ***", None),
        (_header("no-colon"), None),
    ],
)
def test_parse_basic_auth(header: str | None, expected: tuple[str, str] | None) -> None:
    assert parse_basic_auth(header) == expected
