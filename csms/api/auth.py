"""Who is calling: bearer tokens with roles (viewer < operator < admin).

``Authorization: Bearer csms_<id>.<secret>``. No or a malformed token: 401 with
``WWW-Authenticate: Bearer``; an unknown, wrong or revoked token: 401; a role below the one
required: 403. Nothing changes state without the operator role. Verified tokens are cached for
a few seconds (keyed by the hash of the whole value), so a dashboard polling every second does
not cost a database read per request; revocation takes effect within that time.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPBearer

from csms.api import tokens
from csms.api.context import ApiContext
from csms.api.tokens import Role
from csms.logs import get_logger
from csms.store.base import utc_now

log = get_logger("csms.api.auth")

BEARER = HTTPBearer(auto_error=False, scheme_name="token",
                    description="API token from `csms token create` (csms_<id>.<secret>)")
"""Declares the bearer scheme in the OpenAPI document; the checks are ours."""
CACHE_SECONDS = 5.0
CACHE_MAX = 1024


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller: a token's id, name and role."""

    token_id: str
    name: str
    role: Role

    @property
    def label(self) -> str:
        """How the caller appears in ticket notes and the audit log."""
        return f"{self.name} ({self.token_id})"


def _unauthorised(reason: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=reason,
                         headers={"WWW-Authenticate": "Bearer"})


class Authenticator:
    """Checks bearer tokens against the store, with a short positive cache."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._touches: set[asyncio.Task[None]] = set()

    async def principal(self, request: Request) -> Principal:
        """The caller, or a 401."""
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if not header:
            raise _unauthorised("missing bearer token (Authorization: Bearer csms_...)")
        if scheme.lower() != "bearer" or not value.strip():
            raise _unauthorised("expected 'Authorization: Bearer <token>'")
        value = value.strip()
        key = hashlib.sha256(value.encode()).hexdigest()
        cached = self._cache.get(key)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        parsed = tokens.parse(value)
        if parsed is None:
            raise _unauthorised("malformed token")
        token_id, secret = parsed
        record = await self.ctx.store.get_token(token_id)
        if record is None or not tokens.matches(secret, record.secret_hash):
            log.info("api_auth_refused", token_id=token_id, reason="unknown or wrong")
            raise _unauthorised("unknown token")
        if record.revoked_at is not None:
            raise _unauthorised("token revoked")
        principal = Principal(record.id, record.name, Role(record.role))
        if len(self._cache) >= CACHE_MAX:
            self._cache.clear()
        self._cache[key] = (now + CACHE_SECONDS, principal)
        # "last used" is bookkeeping: a read request must not wait for a write.
        task = asyncio.create_task(self._touch(record.id))
        self._touches.add(task)
        task.add_done_callback(self._touches.discard)
        return principal

    async def _touch(self, token_id: str) -> None:
        try:
            await self.ctx.store.touch_token(token_id, utc_now())
        except Exception:
            log.warning("api_token_touch_failed", token_id=token_id)

    def require(self, role: Role) -> Callable[[Request], Awaitable[Principal]]:
        """A FastAPI dependency: the caller, who must hold at least ``role`` (else 403)."""

        async def dependency(request: Request, _: object = Depends(BEARER)) -> Principal:
            principal = await self.principal(request)
            if not principal.role.allows(role):
                raise HTTPException(
                    status.HTTP_403_FORBIDDEN,
                    detail=f"role {role.value} required (token has {principal.role.value})",
                )
            return principal

        return dependency


def depends(auth: Authenticator, role: Role) -> object:
    """``Depends(auth.require(role))`` (for ``Annotated[Principal, depends(...)]``)."""
    return Depends(auth.require(role))
