"""Enforces each station's security profile at the websocket handshake.

:class:`ProfileGuard` is asked by :class:`csms.server.OcppServer` before the Basic auth check:
it reads the station's profile (coalesced with the other handshakes of the same moment, as
the credentials are), looks at the transport (TLS, verified client certificate) and applies
:func:`csms.security.profiles.decide`. The server logs, counts and records a refusal.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from csms.security.profiles import Admit, Refuse, decide, required_profile
from csms.security.tls import transport_of
from csms.store.loader import BatchLoader


class ProfileGuard:
    """``await guard.check(transport, identity, has_password=...)`` per handshake."""

    def __init__(
        self,
        profiles_of: Callable[[list[str]], Awaitable[dict[str, int | None]]],
        default_profile: int,
    ) -> None:
        self.default_profile = default_profile
        self._profiles: BatchLoader[str, int | None] = BatchLoader(profiles_of)

    async def check(self, transport: Any, identity: str, *, has_password: bool) -> Admit | Refuse:
        """The verdict for a handshake of ``identity`` on ``transport`` (an asyncio transport).

        A verified certificate naming the charger is enough on its own, so its station's
        profile is not even read.
        """
        seen = transport_of(transport)
        if seen.certificate_names is not None and identity in seen.certificate_names:
            own = None
        else:
            own = await self._profiles.load(identity)
        return decide(identity, required_profile(own, self.default_profile), seen,
                      has_password=has_password)
