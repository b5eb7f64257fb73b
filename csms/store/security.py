"""Per-station security profile (``stations.security_profile``; ``NULL``: the server default)."""

from __future__ import annotations

from sqlalchemy import select, update

from csms.store.base import StoreBase, utc_now
from csms.store.models import Station


class SecurityQueries(StoreBase):
    """Set and read the security profile stations must connect with."""

    async def set_security_profile(self, station_id: str, profile: int | None) -> bool:
        """Require ``profile`` (0 to 3; ``None``: the server default) of a known station;
        False when there is no such station."""
        if profile is not None and not 0 <= profile <= 3:
            raise ValueError(f"security profile must be 0 to 3, not {profile}")
        async with self.db.write_session() as session:
            result = await session.execute(
                update(Station).where(Station.id == station_id)
                .values(security_profile=profile, updated_at=utc_now())
                .execution_options(synchronize_session=False)
            )
        return bool(getattr(result, "rowcount", 0))

    async def security_profiles_of(self, station_ids: list[str]) -> dict[str, int | None]:
        """``{id: profile or None}`` of the known stations among ``station_ids``."""
        if not station_ids:
            return {}
        async with self.db.read_session() as session:
            rows = (await session.execute(
                select(Station.id, Station.security_profile).where(Station.id.in_(station_ids))
            )).all()
        return {station_id: profile for station_id, profile in rows}
