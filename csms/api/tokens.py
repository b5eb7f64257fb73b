"""API token format, hashing and roles.

A token is ``csms_<id>.<secret>``: the id is public (logs, listings, revocation), the secret is
32 random bytes shown once at creation; only its SHA-256 is stored (a high-entropy secret needs
no slow hash). Roles are ordered: ``viewer`` reads, ``operator`` also changes state (commands,
ticket transitions, diagnose now), ``admin`` also manages webhooks deliveries and settings-like
resources.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass

PREFIX = "csms_"


class Role(enum.StrEnum):
    """What a token may do; each role includes the ones before it."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """Position in viewer < operator < admin."""
        return list(Role).index(self)

    def allows(self, needed: Role) -> bool:
        """Whether this role includes ``needed``."""
        return self.rank >= needed.rank


@dataclass(frozen=True, slots=True)
class NewToken:
    """A freshly generated token: ``value`` is shown once, ``secret_hash`` is stored."""

    token_id: str
    value: str
    secret_hash: str


def hash_secret(secret: str) -> str:
    """SHA-256 of the secret part, hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


def generate() -> NewToken:
    """A new random token."""
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return NewToken(token_id, f"{PREFIX}{token_id}.{secret}", hash_secret(secret))


def parse(value: str) -> tuple[str, str] | None:
    """``(id, secret)`` of a well-formed token, else ``None``."""
    if not value.startswith(PREFIX):
        return None
    token_id, dot, secret = value[len(PREFIX):].partition(".")
    if not dot or not token_id or not secret or len(value) > 256:
        return None
    return token_id, secret


def matches(secret: str, secret_hash: str) -> bool:
    """Constant-time check of a presented secret against the stored hash."""
    return hmac.compare_digest(hash_secret(secret), secret_hash)
