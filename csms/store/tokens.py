"""API tokens: created by ``csms token create``, kept as SHA-256 hashes of their secret."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select, update

from csms.store.base import StoreBase, utc_now
from csms.store.models import ApiToken


class TokenQueries(StoreBase):
    """Create, find, list and revoke API tokens."""

    async def create_token(self, *, token_id: str, name: str, role: str,
                           secret_hash: str) -> ApiToken:
        """Store a new token (its secret already hashed)."""
        now = utc_now()
        async with self.db.write_session() as session:
            await session.execute(insert(ApiToken).values(
                id=token_id, name=name, role=role, secret_hash=secret_hash, created_at=now,
            ))
        token = await self.get_token(token_id)
        assert token is not None
        return token

    async def get_token(self, token_id: str) -> ApiToken | None:
        """The token with this public id (revoked ones included)."""
        async with self.db.read_session() as session:
            return await session.get(ApiToken, token_id)

    async def list_tokens(self) -> list[ApiToken]:
        """Every token, oldest first."""
        async with self.db.read_session() as session:
            query = select(ApiToken).order_by(ApiToken.created_at, ApiToken.id)
            return list((await session.scalars(query)).all())

    async def revoke_token(self, token_id: str) -> bool:
        """Revoke a token; False when unknown or already revoked."""
        async with self.db.write_session() as session:
            result = await session.execute(
                update(ApiToken)
                .where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
                .values(revoked_at=utc_now())
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def touch_token(self, token_id: str, at: datetime) -> None:
        """Note when a token was last used."""
        async with self.db.write_session() as session:
            await session.execute(
                update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=at)
            )
