"""Charger passwords for Basic auth (security profiles 1 and 2), stored hashed with scrypt.

OCPP 1.6 Security Whitepaper §2 / 2.0.1 A00.FR.2xx: the CSMS checks ``<identity>:<password>``
from the ``Authorization: Basic`` header before the websocket upgrade. scrypt is deliberately
slow, which hurts in a reconnect storm (thousands of chargers at once), so a successful
verification is remembered in memory as a keyed digest of (hash, password): a charger that
reconnects with the same password is checked in microseconds, a wrong password always pays
the full scrypt cost.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

_N, _R, _P = 2**14, 8, 1
_PREFIX = "scrypt"
_CACHE_KEY = secrets.token_bytes(32)
_verified: dict[str, bytes] = {}
_CACHE_LIMIT = 100_000


class InvalidHash(ValueError):
    """A stored password hash that is not in our format."""


def hash_password(password: str) -> str:
    """Return ``scrypt$n$r$p$salt$digest`` (base64) for ``password``."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return "$".join(
        [_PREFIX, str(_N), str(_R), str(_P), _b64(salt), _b64(digest)],
    )


def verify_password(password: str, stored: str) -> bool:
    """Check ``password`` against a hash made by :func:`hash_password` (constant time)."""
    memo = hmac.digest(_CACHE_KEY, f"{stored}\x00{password}".encode(), "sha256")
    known = _verified.get(stored)
    if known is not None and hmac.compare_digest(known, memo):
        return True
    try:
        prefix, n, r, p, salt, digest = stored.split("$")
        if prefix != _PREFIX:
            raise ValueError(prefix)
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except (ValueError, TypeError) as exc:
        raise InvalidHash("stored password hash is not a csms scrypt hash") from exc
    if not hmac.compare_digest(actual, expected):
        return False
    if len(_verified) >= _CACHE_LIMIT:
        _verified.clear()
    _verified[stored] = memo
    return True


def generate_password(length: int = 24) -> str:
    """A random password for a charger (2.0.1 BasicAuthPassword: 16 to 40 characters)."""
    return secrets.token_urlsafe(length)[:length]


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")
