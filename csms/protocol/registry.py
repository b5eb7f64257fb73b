"""The live sessions of this node: one per charger identity, never two.

OCPP-J 1.6 §3.1 / 2.0.1 Part 4 §3.1: a station that reconnects replaces its old connection.
The registry closes the old one and waits for its handler to finish before the new session is
announced, so the store sees "disconnected" then "connected", in that order.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from csms.protocol.connection import StationConnection
from diagnostics.commands import CommandOutcome, OutcomeStatus, StationCommand

REPLACED_CLOSE_CODE = 1000
REPLACED_REASON = "replaced by a new connection"


@dataclass(eq=False)
class Session:
    """A registered connection and the event set when its handler has finished."""

    station: StationConnection
    finished: asyncio.Event = field(default_factory=asyncio.Event)


class SessionRegistry:
    """Maps charger identities to their one live session on this node."""

    def __init__(self, replace_timeout: float = 5.0) -> None:
        self._sessions: dict[str, Session] = {}
        self._replace_timeout = replace_timeout

    def __len__(self) -> int:
        return len(self._sessions)

    def __contains__(self, station_id: object) -> bool:
        return station_id in self._sessions

    def get(self, station_id: str) -> StationConnection | None:
        """The live session of ``station_id`` on this node, if any."""
        session = self._sessions.get(station_id)
        return session.station if session else None

    def ids(self) -> list[str]:
        """Identities connected to this node."""
        return list(self._sessions)

    async def register(self, station: StationConnection) -> Session:
        """Make ``station`` the live session of its identity, closing any older one."""
        new = Session(station)
        old = self._sessions.get(station.id)
        self._sessions[station.id] = new
        if old is not None:
            await old.station._connection.close(REPLACED_CLOSE_CODE, REPLACED_REASON)
            try:
                await asyncio.wait_for(old.finished.wait(), self._replace_timeout)
            except TimeoutError:
                old.station.log.warning("replaced_session_slow_to_close")
        return new

    def unregister(self, session: Session) -> bool:
        """Forget ``session`` if it is still the live one; True if it was.

        The caller sets ``session.finished`` once its disconnect is recorded.
        """
        if self._sessions.get(session.station.id) is session:
            del self._sessions[session.station.id]
            return True
        return False

    async def execute(self, station_id: str, command: StationCommand) -> CommandOutcome:
        """Send ``command`` to the station; ``offline`` when it is not connected here."""
        station = self.get(station_id)
        if station is None:
            return CommandOutcome(
                OutcomeStatus.OFFLINE, type(command).__name__, detail="station not connected"
            )
        execute = station.execute  # provided by every version adapter
        outcome: CommandOutcome = await execute(command)
        return outcome
