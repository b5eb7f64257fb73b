"""The engine's persisted state: everything needed to resume after a restart.

The engine mutates these dataclasses in place; ``DiagnosticsEngine.snapshot()`` hands out a
deep copy. :meth:`EngineState.to_json` / :meth:`EngineState.from_json` persist it; timers are
not stored, they are recomputed from the deadlines on restore.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from diagnostics.events import ConnectorStatus
from diagnostics.exceptions import StateError
from diagnostics.model import (
    DriverReport,
    FindingRecord,
    StationInfo,
    StepRecord,
    TimelineEntry,
)
from diagnostics.playbooks import Detection, Step
from diagnostics.tickets import Ticket, TicketReason

STATE_VERSION = 1


@dataclass(slots=True)
class ConnectorState:
    """Last known state of one connector (1.6 connector / 2.0.1 EVSE)."""

    status: ConnectorStatus = ConnectorStatus.UNKNOWN
    error_code: str | None = None
    since: datetime | None = None
    connector_id: int | None = None
    """2.0.1: the connector id within the EVSE, for UnlockConnector."""
    preparing_since: datetime | None = None
    failed_sessions: list[datetime] = field(default_factory=list)


@dataclass(slots=True)
class SessionState:
    """A charging session the engine believes is live."""

    point: int
    started_at: datetime
    meter_start_wh: float | None = None
    meter_last_wh: float | None = None


@dataclass(slots=True)
class StationState:
    """What the engine knows about one station."""

    station_id: str
    connected: bool = True
    v2: bool = False
    last_seen: datetime | None = None
    connected_at: datetime | None = None
    disconnected_at: datetime | None = None
    last_boot: datetime | None = None
    boots: list[datetime] = field(default_factory=list)
    """Unexpected boots within the boot-loop window."""
    resets: list[datetime] = field(default_factory=list)
    """Remote resets sent within the budget window."""
    connectors: dict[int, ConnectorState] = field(default_factory=dict)
    sessions: dict[str, SessionState] = field(default_factory=dict)
    timeline: list[TimelineEntry] = field(default_factory=list)
    info: StationInfo | None = None
    reset_owner: str | None = None
    """The run whose reset is in flight (one reset at a time per station)."""
    last_log_request: int | None = None
    run_ids: list[str] = field(default_factory=list)
    operator_reset_at: datetime | None = None
    """When an operator's reset was sent: the boot that follows is expected."""


@dataclass(slots=True)
class RunState:
    """One diagnosis-and-remediation run for one fault key (station, connector, fault class)."""

    run_id: str
    station_id: str
    point: int
    fault_class: str
    detection: Detection
    phase: str
    started_at: datetime
    updated_at: datetime
    plan: list[Step]
    step_index: int = 0
    commands_sent: int = 0
    grace_until: datetime | None = None
    pending_command: str | None = None
    command_deadline: datetime | None = None
    verify_deadline: datetime | None = None
    expect_boot: bool = False
    boot_seen: bool = False
    healthy_since: datetime | None = None
    status_clears: bool = False
    """2.0.1 problem runs: a plain Available clears them only after Faulted or a boot."""
    from_code: bool = False
    """1.6 error-code run: any status with NoError clears it."""
    wait_until: datetime | None = None
    wait_reason: str | None = None
    log_request_id: int | None = None
    log_status: str | None = None
    log_analysed: bool = False
    steps: list[StepRecord] = field(default_factory=list)
    findings: list[FindingRecord] = field(default_factory=list)
    reports: list[DriverReport] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)
    vendor_codes: list[str] = field(default_factory=list)
    components: list[str] = field(default_factory=list)
    ticket_id: str | None = None
    ticket_base: list[int] = field(default_factory=list)
    """Steps, findings and reports the ticket already held when this run joined it."""
    category: str | None = None
    """Driver report category of a driver-report run."""
    escalation: TicketReason | None = None
    safety: bool = False
    outcome: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        """The fault key: one run and one open ticket per key."""
        return fault_key(self.station_id, self.point, self.fault_class)


def fault_key(station_id: str, point: int, fault_class: str) -> str:
    """``station|connector|fault class``."""
    return f"{station_id}|{point}|{fault_class}"


@dataclass(slots=True)
class PendingCommand:
    """A command sent whose outcome has not come yet."""

    run_id: str
    sent_at: datetime


@dataclass(slots=True)
class FixRecord:
    """The last time a fault key was fixed remotely or resolved (for flapping)."""

    at: datetime
    run_id: str
    how: str
    steps: list[StepRecord] = field(default_factory=list)


@dataclass(slots=True)
class LogRequestRef:
    """Which run (and ticket) a log request belongs to, for late findings."""

    run_id: str
    station_id: str
    ticket_id: str | None = None


@dataclass(slots=True)
class EngineState:
    """The whole persisted state."""

    version: int = STATE_VERSION
    seq: int = 0
    request_seq: int = 0
    stations: dict[str, StationState] = field(default_factory=dict)
    runs: dict[str, RunState] = field(default_factory=dict)
    run_by_key: dict[str, str] = field(default_factory=dict)
    pending: dict[str, PendingCommand] = field(default_factory=dict)
    tickets: dict[str, Ticket] = field(default_factory=dict)
    ticket_by_key: dict[str, str] = field(default_factory=dict)
    fixes: dict[str, FixRecord] = field(default_factory=dict)
    occurrences: dict[str, list[datetime]] = field(default_factory=dict)
    log_requests: dict[int, LogRequestRef] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible form."""
        from diagnostics.serde import encode

        data = encode(EngineState, self)
        assert isinstance(data, dict)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EngineState:
        """Inverse of :meth:`to_dict`; :class:`StateError` when unreadable."""
        from diagnostics.serde import decode

        version = data.get("version") if isinstance(data, dict) else None
        if version != STATE_VERSION:
            raise StateError(f"engine state version {version!r}, expected {STATE_VERSION}")
        try:
            state = decode(EngineState, data)
        except (KeyError, TypeError, ValueError) as error:
            raise StateError(f"unreadable engine state: {error}") from error
        assert isinstance(state, EngineState)
        return state

    def to_json(self) -> str:
        """The whole state as one JSON document (:func:`diagnostics.serde.dumps`: the document
        of :meth:`to_dict`, made by orjson). The write-ahead saves :func:`split_state` deltas."""
        from diagnostics.serde import dumps

        return dumps(EngineState, self).decode()

    @classmethod
    def from_json(cls, text: str | bytes) -> EngineState:
        """Inverse of :meth:`to_json`."""
        try:
            data = json.loads(text)
        except ValueError as error:
            raise StateError(f"engine state is not JSON: {error}") from error
        return cls.from_dict(data)


@dataclass
class StationShard:
    """One station's part of the state, persisted on its own: the station with its timeline,
    its runs, tickets, pending commands and log requests, and its fault keys' history. All
    that one station's events change; the core keeps the counters only."""

    station_id: str
    station: StationState | None = None
    runs: dict[str, RunState] = field(default_factory=dict)
    tickets: dict[str, Ticket] = field(default_factory=dict)
    pending: dict[str, PendingCommand] = field(default_factory=dict)
    log_requests: dict[int, LogRequestRef] = field(default_factory=dict)
    run_by_key: dict[str, str] = field(default_factory=dict)
    ticket_by_key: dict[str, str] = field(default_factory=dict)
    fixes: dict[str, FixRecord] = field(default_factory=dict)
    occurrences: dict[str, list[datetime]] = field(default_factory=dict)


_SHARDED = ("runs", "tickets", "pending", "log_requests", "run_by_key", "ticket_by_key",
            "fixes", "occurrences")
"""The :class:`EngineState` tables split over the station shards."""
_KEYED = ("run_by_key", "ticket_by_key", "fixes", "occurrences")
"""Of those, the tables keyed by :func:`fault_key`."""


def station_of_key(key: str) -> str:
    """The station of a :func:`fault_key` (the station id may itself hold ``|``)."""
    return key.rsplit("|", 2)[0]


@dataclass(frozen=True)
class StateDelta:
    """What to write so that the stored state equals the engine's (see
    :func:`assemble_state`): the core (everything but the station shards) always, and the
    shards of the stations that changed since the last delta (``None``: remove it).
    ``full``: ``shards`` holds every shard; any other stored shard is to be removed."""

    core: str
    shards: dict[str, str | None]
    full: bool


def split_state(state: EngineState, station_ids: set[str] | None) -> StateDelta:
    """The delta for ``station_ids`` (``None``: every station, a full delta)."""
    from diagnostics.serde import dumps

    wanted = station_ids
    shards: dict[str, StationShard] = {}

    def shard(station_id: str) -> StationShard | None:
        if wanted is not None and station_id not in wanted:
            return None
        found = shards.get(station_id)
        if found is None:
            found = shards[station_id] = StationShard(station_id)
        return found

    stations = state.stations
    for station_id in stations if wanted is None else wanted:
        if station_id in stations and (found := shard(station_id)) is not None:
            found.station = stations[station_id]
    for run_id, run in state.runs.items():
        if (found := shard(run.station_id)) is not None:
            found.runs[run_id] = run
    for ticket_id, ticket in state.tickets.items():
        if (found := shard(ticket.station_id)) is not None:
            found.tickets[ticket_id] = ticket
    for request_id, ref in state.log_requests.items():
        if (found := shard(ref.station_id)) is not None:
            found.log_requests[request_id] = ref
    orphans: dict[str, PendingCommand] = {}
    for command_id, pending in state.pending.items():
        owner = state.runs.get(pending.run_id)
        if owner is None:
            orphans[command_id] = pending  # no run to follow: stays in the core
        elif (found := shard(owner.station_id)) is not None:
            found.pending[command_id] = pending
    for name in _KEYED:
        for key, value in getattr(state, name).items():
            if (found := shard(station_of_key(key))) is not None:
                getattr(found, name)[key] = value
    encoded: dict[str, str | None] = {
        station_id: dumps(StationShard, found).decode() for station_id, found in shards.items()
    }
    for station_id in wanted or ():
        encoded.setdefault(station_id, None)
    core = dataclasses.replace(state, stations={}, runs={}, tickets={}, pending=orphans,
                               log_requests={}, run_by_key={}, ticket_by_key={}, fixes={},
                               occurrences={})
    return StateDelta(core=dumps(EngineState, core).decode(), shards=encoded,
                      full=station_ids is None)


def assemble_state(core: str | bytes, shards: Iterable[str | bytes]) -> EngineState:
    """The state from its stored core and station shards (:class:`StateError` when
    unreadable). A core written whole, before shards existed, is read as it is."""
    return EngineState.from_dict(merge_state_documents(core, shards))


def merge_state_documents(core: str | bytes, shards: Iterable[str | bytes]) -> dict[str, Any]:
    """The :meth:`EngineState.to_dict` document from a stored core and shards."""
    try:
        data = json.loads(core)
        stations = data.setdefault("stations", {})
        tables = [(name, data.setdefault(name, {})) for name in _SHARDED]
        for text in shards:
            shard = json.loads(text)
            if shard.get("station") is not None:
                stations[shard["station_id"]] = shard["station"]
            for name, table in tables:
                table.update(shard.get(name) or {})
    except (ValueError, AttributeError, KeyError, TypeError) as error:
        raise StateError(f"engine state is not readable JSON: {error}") from error
    if not isinstance(data, dict):
        raise StateError("engine state is not a JSON object")
    return data
