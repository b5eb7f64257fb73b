"""The diagnostics engine: events in, actions out, the clock passed in.

Sans-I/O like python-websockets' protocol objects: the server calls

- :meth:`DiagnosticsEngine.observe` with every station event (and the external triggers
  :class:`~diagnostics.events.DriverFaultReported` and
  :class:`~diagnostics.events.DiagnosisRequested`),
- :meth:`DiagnosticsEngine.command_finished` with the outcome of every :class:`SendCommand`,
- :meth:`DiagnosticsEngine.log_analysed` when an uploaded log was matched against the signatures,
- :meth:`DiagnosticsEngine.tick` regularly (at :meth:`DiagnosticsEngine.next_deadline` at the
  latest) for timers: grace periods, settle periods, timeouts, silence, log waits,

and performs the returned actions in order. Every call processes due timers first. After a
call that returned actions, persist :meth:`DiagnosticsEngine.snapshot` *before* performing them:
after a restart, ``DiagnosticsEngine(..., state=restored)`` resumes every run where it was; a
command whose outcome never came is taken as timed out (never sent again). A server whose
restart dropped every connection says so first (:meth:`DiagnosticsEngine.connections_lost`).

A fault is keyed by station, connector (1.6 connector id, 2.0.1 EVSE id, 0 for the station)
and fault class: one run and at most one open ticket per key.
"""

from __future__ import annotations

import dataclasses
import enum
import heapq
import itertools
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from diagnostics.actions import (
    Action,
    OpenTicket,
    ResolveTicket,
    RunChanged,
    RunView,
    SendCommand,
    UpdateTicket,
)
from diagnostics.commands import (
    ChangeAvailability,
    CommandOutcome,
    GetConfiguration,
    HardReset,
    OutcomeStatus,
    RequestLog,
    SoftReset,
    StationCommand,
    TriggerKind,
    TriggerMessage,
    UnlockConnector,
)
from diagnostics.events import (
    ConnectorStatus,
    ConnectorStatusChanged,
    DiagnosisRequested,
    DriverCategory,
    DriverFaultReported,
    EngineInput,
    FaultReported,
    LogUploadProgress,
    LogUploadStatus,
    MeterValuesReceived,
    StationBooted,
    StationConnected,
    StationDisconnected,
    TransactionEnded,
    TransactionStarted,
)
from diagnostics.exceptions import UnknownTicket
from diagnostics.model import (
    DriverReport,
    FindingRecord,
    Priority,
    StationInfo,
    StepRecord,
    StepResult,
    TimelineEntry,
)
from diagnostics.playbooks import (
    DIAGNOSTIC_ACTIONS,
    REMEDIAL_ACTIONS,
    RESET_ACTIONS,
    Detection,
    Playbook,
    PlaybookSet,
    Step,
    StepAction,
)
from diagnostics.signatures import LogFinding, Severity
from diagnostics.sla import SlaPolicies
from diagnostics.state import (
    ConnectorState,
    EngineState,
    FixRecord,
    LogRequestRef,
    PendingCommand,
    RunState,
    SessionState,
    StateDelta,
    StationState,
    fault_key,
    split_state,
    station_of_key,
)
from diagnostics.tickets import Ticket, TicketNote, TicketReason, TicketStatus
from diagnostics.timings import Timings

LogLocation = Callable[[str, int], str]
"""``(station_id, request_id) -> upload URL`` for RequestLog."""


class Phase(enum.StrEnum):
    """Where a run is."""

    GRACE = "grace"
    HOLD_PLUGGED = "hold_plugged"
    WAIT_PRECONDITION = "wait_precondition"
    COMMAND = "command"
    VERIFY = "verify"
    LOG_WAIT = "log_wait"
    TICKETED = "ticketed"
    DONE = "done"


_S = ConnectorStatus
HEALTHY_STATUSES = frozenset(
    {_S.AVAILABLE, _S.PREPARING, _S.CHARGING, _S.SUSPENDED_EV, _S.SUSPENDED_EVSE, _S.FINISHING,
     _S.RESERVED, _S.OCCUPIED}
)
PLUGGED_STATUSES = frozenset(
    {_S.PREPARING, _S.CHARGING, _S.SUSPENDED_EV, _S.SUSPENDED_EVSE, _S.FINISHING, _S.OCCUPIED}
)
CHARGING_STATUSES = frozenset({_S.CHARGING, _S.SUSPENDED_EV, _S.SUSPENDED_EVSE})
_SESSION_OVER = frozenset({_S.AVAILABLE, _S.FAULTED, _S.UNAVAILABLE, _S.RESERVED})
FAULT_DETECTIONS = frozenset({Detection.FAULT, Detection.FAULTED_STATUS})
SERVICE_DETECTIONS = frozenset(
    {Detection.FAILED_SESSIONS, Detection.DRIVER_REPORT, Detection.OPERATOR}
)
"""Runs without an observable fault state: only a verified step or a good session ends them."""
_NOT_CLEARED_BY_SESSION = frozenset(
    {DriverCategory.PAYMENT.value, DriverCategory.MISSING_SESSION.value,
     DriverCategory.PHYSICAL_DAMAGE.value}
)
_U = LogUploadStatus
FINAL_LOG_STATUSES = frozenset(
    {_U.UPLOADED, _U.FAILED, _U.BAD_MESSAGE, _U.NOT_SUPPORTED, _U.PERMISSION_DENIED}
)
FAILED_LOG_STATUSES = FINAL_LOG_STATUSES - {_U.UPLOADED}
_NO_ERROR = (None, "NoError", "")
_MAX_FINDINGS = 50
_MAX_REPORTS = 50
_MAX_CODES = 20
_MAX_LOG_REFS = 10_000
_PRUNE_AT = 10_000
_TICKET_TIMELINE = 50
_ZERO = timedelta(0)
_EPOCH = datetime.min.replace(tzinfo=UTC)
_NOT_FROM_STATION = frozenset({DriverFaultReported, DiagnosisRequested, StationDisconnected})
_EPSILON = timedelta(microseconds=1)


def _point(evse_id: int | None, connector_id: int | None) -> int:
    """The connector key: the 2.0.1 EVSE id, else the 1.6 connector id, 0 for the station."""
    if evse_id is not None:
        return evse_id
    return connector_id or 0


def _command_point(command: StationCommand) -> int:
    """The connector (1.6) or EVSE (2.0.1) a command addresses, 0 for the station."""
    for name in ("evse_id", "connector_id"):
        value = getattr(command, name, None)
        if isinstance(value, int):
            return value
    return 0


@dataclasses.dataclass(frozen=True, slots=True)
class OperatorDecision:
    """Whether an operator's command may be sent, and why not."""

    allowed: bool
    reason: str | None = None


def _mark(run: RunState) -> tuple[object, ...]:
    """What a RunChanged would show: a run whose mark did not change is not re-published."""
    return (
        run.phase, run.step_index, len(run.steps), run.steps[-1] if run.steps else None,
        run.healthy_since, run.wait_reason, run.ticket_id, len(run.findings), len(run.reports),
        len(run.codes), len(run.vendor_codes), run.outcome, run.fault_class, run.escalation,
        run.safety, len(run.plan),
    )


def _bounded_add(items: list[str], value: str | None) -> None:
    if value and value not in items and len(items) < _MAX_CODES:
        items.append(value)


class DiagnosticsEngine:
    """Fault detection, diagnosis, the remediation ladder and tickets, without I/O.

    ``log_location`` is a template with ``{upload_base}``, ``{station_id}`` (URL-quoted) and
    ``{request_id}``, or a callable ``(station_id, request_id) -> URL`` (to choose HTTP or FTP
    per station, or add a per-request token).
    """

    def __init__(
        self,
        playbooks: PlaybookSet,
        sla: SlaPolicies,
        timings: Timings | None = None,
        state: EngineState | None = None,
        *,
        log_location: str | LogLocation = "{upload_base}/{station_id}/{request_id}",
        upload_base: str = "",
    ) -> None:
        self.playbooks = playbooks
        self.sla = sla
        self.timings = timings or Timings()
        self.limits = playbooks.limits
        if isinstance(log_location, str):
            template = log_location
            base = upload_base.rstrip("/")

            def location(station_id: str, request_id: int) -> str:
                return template.format(
                    upload_base=base, station_id=quote(station_id, safe=""), request_id=request_id
                )

            self._location: LogLocation = location
        else:
            self._location = log_location
        self._s = state if state is not None else EngineState()
        self._heap: list[tuple[datetime, int, str, str]] = []
        self._heap_seq = itertools.count()
        self._queued: dict[str, datetime] = {}
        self._silence_queued: set[str] = set()
        self._dirty: dict[str, RunState] = {}
        self._touched: set[str] = set()
        """Stations whose shard changed since the last :meth:`state_delta`."""
        self._all_touched = True
        """The next delta is a full one (a new engine: the store may hold anything)."""
        self._later: list[RunState] = []
        self._seen: dict[str, tuple[object, ...]] = {}
        self._prune_at = _PRUNE_AT
        self._out: list[Action] = []
        self._now: datetime = _EPOCH
        self._resume_pending = state is not None
        self.spins = 0
        """Times a run was due again right after advancing (always 0 unless there is a bug)."""
        self._handlers: dict[type, Callable[[StationState, EngineInput], None]] = {
            StationConnected: self._on_connected,  # type: ignore[dict-item]
            StationDisconnected: self._on_disconnected,  # type: ignore[dict-item]
            StationBooted: self._on_booted,  # type: ignore[dict-item]
            ConnectorStatusChanged: self._on_status,  # type: ignore[dict-item]
            FaultReported: self._on_fault,  # type: ignore[dict-item]
            TransactionStarted: self._on_tx_started,  # type: ignore[dict-item]
            TransactionEnded: self._on_tx_ended,  # type: ignore[dict-item]
            MeterValuesReceived: self._on_meter,  # type: ignore[dict-item]
            LogUploadProgress: self._on_log_progress,  # type: ignore[dict-item]
            DriverFaultReported: self._on_driver_report,  # type: ignore[dict-item]
            DiagnosisRequested: self._on_diagnosis_requested,  # type: ignore[dict-item]
        }
        if state is not None:
            self._rebuild_timers()

    # ------------------------------------------------------------------ public API

    def observe(self, event: EngineInput, now: datetime) -> list[Action]:
        """Feed one event (station event or external trigger); returns the actions to take."""
        # the call frame of _begin/_end, inlined: this is the hot path
        self._now = now
        self._out = []
        if self._resume_pending:
            self._resume_pending = False
            self._resume()
        heap = self._heap
        if heap and heap[0][0] <= now:
            self._run_timers()
        st = self._s.stations.get(event.station_id)
        if st is None:
            st = self._new_station(event.station_id)
        self._touched.add(event.station_id)
        kind = type(event)
        if kind not in _NOT_FROM_STATION:
            first = st.last_seen is None
            st.last_seen = now
            if not st.connected and kind is not StationConnected:
                self._connected(st, "message from a station thought disconnected")
            if first:
                self._push_silence(st)
            if st.run_ids:
                self._message_seen(st)
        handler = self._handlers.get(kind)
        if handler is not None:
            handler(st, event)
        if self._later or self._dirty:
            return self._end()
        out = self._out
        self._out = []
        return out

    def command_finished(
        self, command_id: str, outcome: CommandOutcome, now: datetime
    ) -> list[Action]:
        """The outcome of a :class:`SendCommand` (stale or unknown ids are ignored)."""
        self._begin(now)
        pending = self._s.pending.pop(command_id, None)
        if pending is not None:
            run = self._s.runs.get(pending.run_id)
            if run is not None:
                self._touched.add(run.station_id)  # its shard held the pending command
            if run is not None and run.pending_command == command_id:
                run.pending_command = None
                run.command_deadline = None
                self._outcome(run, outcome)
                self._touch(run)
        return self._end()

    def log_analysed(
        self,
        station_id: str,
        request_id: int,
        findings: Iterable[LogFinding],
        log_ref: str | None,
        now: datetime,
    ) -> list[Action]:
        """The log uploaded for ``request_id`` was stored (``log_ref``) and matched."""
        self._begin(now)
        self._touched.add(station_id)
        records = [
            FindingRecord(finding=f, at=now, request_id=request_id, log_ref=log_ref)
            for f in findings
        ]
        ref = self._s.log_requests.get(request_id)
        run = self._s.runs.get(ref.run_id) if ref is not None else None
        if run is not None and run.station_id == station_id:
            self._log_findings(run, request_id, records, log_ref)
        elif ref is not None and ref.ticket_id is not None:
            ticket = self._s.tickets.get(ref.ticket_id)
            if ticket is not None and ticket.status is not TicketStatus.CLOSED and records:
                ticket = dataclasses.replace(
                    ticket.with_note(now, self._findings_note(records)),
                    findings=(*ticket.findings, *records)[-_MAX_FINDINGS:],
                )
                self._put_ticket(ticket)
                self._out.append(UpdateTicket(ticket.ticket_id, "log findings", ticket))
        return self._end()

    def tick(self, now: datetime) -> list[Action]:
        """Process due timers."""
        self._begin(now)
        return self._end()

    def connections_lost(self, now: datetime, reason: str = "CSMS restarted") -> list[Action]:
        """After a restore on a server whose restart dropped every connection (one node, not
        a cluster takeover); call it before any other input.

        The stations with runs under way are disconnected at ``now``, before the resume:
        their runs then wait for the reconnection instead of sending their next command at
        once to a station that is still reconnecting, which would find it offline and burn
        the step. (The other stations are corrected by their next event, or found by the
        silence probe.)
        """
        self._now = now
        self._out = []
        lost = [st for st in self._s.stations.values() if st.connected and st.run_ids]
        for st in lost:
            self._touched.add(st.station_id)
            self._on_disconnected(
                st, StationDisconnected(station_id=st.station_id, at=now, reason=reason))
        if self._resume_pending:
            self._resume_pending = False
            self._resume()
        for st in lost:
            # A reset whose outcome died with the process no longer owns the station: its
            # absence is now an offline fault (no-op when it has its offline run already).
            if not st.connected and st.reset_owner is None:
                self._went_offline(st)
        if self._heap and self._heap[0][0] <= now:
            self._run_timers()
        return self._end()

    def next_deadline(self) -> datetime | None:
        """When :meth:`tick` should be called at the latest (``None``: nothing scheduled)."""
        return self._heap[0][0] if self._heap else None

    def set_station_info(self, info: StationInfo) -> None:
        """Site, owner, location and SLA contract of a station, for its tickets."""
        st = self._s.stations.get(info.station_id)
        if st is None:
            st = self._new_station(info.station_id)
        st.info = info
        self._touched.add(info.station_id)

    def ticket_status_changed(
        self,
        ticket_id: str,
        status: TicketStatus,
        now: datetime,
        note: str | None = None,
        by: str | None = None,
    ) -> list[Action]:
        """Drive a ticket's lifecycle (acknowledge, dispatch, resolve, close, reopen).

        Raises :class:`~diagnostics.exceptions.UnknownTicket` and
        :class:`~diagnostics.exceptions.InvalidTransition`.
        """
        self._begin(now)
        ticket = self._s.tickets.get(ticket_id)
        if ticket is None:
            raise UnknownTicket(ticket_id)
        updated = ticket.transition(status, now, note, by)
        self._touched.add(ticket.station_id)
        key = fault_key(ticket.station_id, ticket.connector, ticket.fault_class)
        self._put_ticket(updated)
        self._out.append(UpdateTicket(ticket_id, updated.notes[-1].text, updated))
        run = self._run_for_key(key)
        if run is not None and run.ticket_id != ticket_id:
            run = None
        if status is TicketStatus.CLOSED:
            del self._s.tickets[ticket_id]
            if self._s.ticket_by_key.get(key) == ticket_id:
                del self._s.ticket_by_key[key]
            if run is not None:
                self._finish(run, "closed_by_operator")
        elif status is TicketStatus.RESOLVED:
            self._s.fixes[key] = FixRecord(at=now, run_id=ticket.run_id, how="resolved")
            if run is not None:
                self._finish(run, "resolved_by_operator")
        return self._end()

    def operator_command(
        self,
        station_id: str,
        command: StationCommand,
        now: datetime,
        *,
        by: str,
        force: bool = False,
    ) -> OperatorDecision:
        """Check an operator's command against the rules the ladder obeys, and record it.

        Refused: any reset while a safety fault is open on the station (never overridable:
        no remote retries on safety faults); a reset while another reset is in flight; a
        reset beyond the daily reset budget (no reset loops); a reset, unlock or availability
        change while a session is live (``force`` overrides only this one). An allowed reset
        counts against the budget and makes the next boot expected (not a boot loop).
        """
        self._begin(now)
        st = self._s.stations.get(station_id)
        if st is None:
            st = self._new_station(station_id)
        self._touched.add(station_id)
        name = type(command).__name__
        reason: str | None = None
        is_reset = isinstance(command, SoftReset | HardReset)
        point = _command_point(command)
        if is_reset:
            for run in self._runs_of(st):
                if run.safety or self._playbook(run).safety:
                    reason = f"safety fault {run.fault_class} open on the station: no remote reset"
                    break
            if reason is None and st.reset_owner is not None:
                reason = "another reset in flight"
            if reason is None:
                cutoff = self._now - self.timings.reset_budget_window
                st.resets = [t for t in st.resets if t > cutoff]
                if len(st.resets) >= self.limits.resets_per_day:
                    reason = f"reset budget exhausted ({self.limits.resets_per_day} per day)"
            if reason is None and not force and self._live_session(st, None):
                reason = "session live on the station (force to override)"
        elif (
            isinstance(command, UnlockConnector | ChangeAvailability)
            and not force
            and self._live_session(st, point)
        ):
            reason = "session live on the connector (force to override)"
        if reason is None:
            if is_reset:
                st.resets.append(self._now)
                st.operator_reset_at = self._now
            self._timeline(st, "operator", f"{name} by {by}", point or None)
        else:
            self._timeline(st, "operator_refused", f"{name} by {by}: {reason}", point or None)
        self._end()
        return OperatorDecision(allowed=reason is None, reason=reason)

    def snapshot(self) -> EngineState:
        """A deep copy of the state, to persist (see :meth:`EngineState.to_json`)."""
        return EngineState.from_dict(self._s.to_dict())

    def snapshot_json(self) -> str:
        """The state as JSON, to persist (cheaper than ``snapshot().to_json()``: no copy)."""
        return self._s.to_json()

    def state_delta(self) -> StateDelta:
        """What to persist since the last call: the core and the changed stations' shards
        (every shard the first time, and after a restore). Give it back with
        :meth:`delta_not_saved` when it could not be written."""
        touched = None if self._all_touched else self._touched
        delta = split_state(self._s, touched)
        self._all_touched = False
        self._touched = set()
        return delta

    def delta_not_saved(self, delta: StateDelta) -> None:
        """``delta`` was not written: the next one includes its stations again."""
        if delta.full:
            self._all_touched = True
        else:
            self._touched.update(delta.shards)

    def runs(self) -> list[RunView]:
        """Every active run."""
        return [self._view(run) for run in self._s.runs.values()]

    def run(self, run_id: str) -> RunView | None:
        """One active run."""
        run = self._s.runs.get(run_id)
        return None if run is None else self._view(run)

    def tickets(self) -> list[Ticket]:
        """Every ticket not closed."""
        return list(self._s.tickets.values())

    def ticket(self, ticket_id: str) -> Ticket | None:
        """One ticket not closed."""
        return self._s.tickets.get(ticket_id)

    def station_info(self, station_id: str) -> StationInfo | None:
        """What :meth:`set_station_info` said about a station."""
        st = self._s.stations.get(station_id)
        return None if st is None else st.info

    def timeline(self, station_id: str) -> list[TimelineEntry]:
        """The bounded status history of a station."""
        st = self._s.stations.get(station_id)
        return [] if st is None else list(st.timeline)

    # ------------------------------------------------------------------ call frame

    def _begin(self, now: datetime) -> None:
        self._now = now
        self._out = []
        if self._resume_pending:
            self._resume_pending = False
            self._resume()
        heap = self._heap
        if heap and heap[0][0] <= now:
            self._run_timers()

    def _end(self) -> list[Action]:
        if self._later:
            later = self._later
            self._later = []
            for run in later:
                self._touch(run)
        if self._dirty:
            dirty = self._dirty
            self._dirty = {}
            seen = self._seen
            touched = self._touched
            for run_id, run in dirty.items():
                touched.add(run.station_id)
                mark = _mark(run)
                if seen.get(run_id) != mark:
                    self._out.append(RunChanged(self._view(run)))
                if run.phase == Phase.DONE:
                    seen.pop(run_id, None)
                else:
                    seen[run_id] = mark
        out = self._out
        self._out = []
        return out

    def _resume(self) -> None:
        """After a restart: outcomes that never came are timeouts; silence clocks restart."""
        self._all_touched = True
        for st in self._s.stations.values():
            if st.connected and st.last_seen is not None and st.last_seen < self._now:
                st.last_seen = self._now
        for command_id, pending in list(self._s.pending.items()):
            del self._s.pending[command_id]
            run = self._s.runs.get(pending.run_id)
            if run is None or run.pending_command != command_id:
                continue
            run.pending_command = None
            run.command_deadline = None
            record = run.steps[-1] if run.steps else None
            action = type(record.commands[-1]).__name__ if record and record.commands else "?"
            self._outcome(
                run,
                CommandOutcome(
                    status=OutcomeStatus.TIMEOUT,
                    action=action,
                    detail="the engine restarted before the outcome arrived",
                ),
            )
            self._touch(run)

    # ------------------------------------------------------------------ timers

    def _push(self, when: datetime, kind: str, key: str) -> None:
        heapq.heappush(self._heap, (when, next(self._heap_seq), kind, key))

    def _rebuild_timers(self) -> None:
        for run in self._s.runs.values():
            self._schedule(run)
        for st in self._s.stations.values():
            if st.connected and st.last_seen is not None:
                self._push_silence(st)
            for point, conn in st.connectors.items():
                if conn.preparing_since is not None:
                    self._push(
                        conn.preparing_since + self.timings.preparing_timeout,
                        "prep",
                        f"{point}|{st.station_id}",
                    )

    def _run_timers(self) -> None:
        heap = self._heap
        now = self._now
        budget = len(heap) * 4 + 1000
        while heap and heap[0][0] <= now and budget > 0:
            budget -= 1
            when, _, kind, key = heapq.heappop(heap)
            if kind == "run":
                if self._queued.get(key) == when:
                    del self._queued[key]
                run = self._s.runs.get(key)
                if run is not None:
                    self._touched.add(run.station_id)
                    self._touch(run)
            elif kind == "silence":
                self._touched.add(key)
                self._silence_queued.discard(key)
                self._check_silence(key)
            elif kind == "prep":
                point, _, station_id = key.partition("|")
                self._touched.add(station_id)
                self._check_preparing(station_id, int(point))

    def _schedule(self, run: RunState) -> None:
        when = self._next_wake(run)
        if when is None:
            return
        if when <= self._now:
            # a wake that is due although the run just advanced as far as it could: a bug
            # (counted for the tests); retry on the next call rather than spin now
            self.spins += 1
            when = self._now + _EPSILON
        queued = self._queued.get(run.run_id)
        if queued is not None and queued <= when:
            return
        self._queued[run.run_id] = when
        self._push(when, "run", run.run_id)

    def _next_wake(self, run: RunState) -> datetime | None:
        phase = run.phase
        wake: datetime | None = None
        if phase == Phase.GRACE:
            return run.grace_until
        if phase in (Phase.DONE, Phase.HOLD_PLUGGED):
            return None
        if phase == Phase.COMMAND:
            wake = run.command_deadline
        elif phase in (Phase.VERIFY, Phase.LOG_WAIT):
            wake = run.verify_deadline
        elif phase == Phase.WAIT_PRECONDITION and run.wait_reason != "station offline":
            wake = run.wait_until
        if run.healthy_since is not None and not (
            phase == Phase.VERIFY and run.expect_boot and not run.boot_seen
        ):
            healthy = run.healthy_since + self._settle(run)
            if wake is None or healthy < wake:
                wake = healthy
        return wake

    def _push_silence(self, st: StationState) -> None:
        if st.station_id in self._silence_queued or st.last_seen is None:
            return
        self._silence_queued.add(st.station_id)
        self._push(st.last_seen + self.timings.silence, "silence", st.station_id)

    def _check_silence(self, station_id: str) -> None:
        st = self._s.stations.get(station_id)
        if st is None or not st.connected or st.last_seen is None:
            return
        due = st.last_seen + self.timings.silence
        if due > self._now:
            self._push_silence(st)
            return
        busy = st.reset_owner is not None or any(
            self._s.runs[rid].detection in (Detection.SILENT, Detection.OFFLINE)
            for rid in st.run_ids
        )
        if not busy:
            self._timeline(st, "silent", f"silent for {self._now - st.last_seen}")
            pb = self.playbooks.for_detection(Detection.SILENT)
            run = self._detect(st, 0, pb, Detection.SILENT)
            self._touch(run)
        self._silence_queued.add(st.station_id)
        self._push(self._now + self.timings.silence, "silence", st.station_id)

    def _check_preparing(self, station_id: str, point: int) -> None:
        st = self._s.stations.get(station_id)
        if st is None:
            return
        conn = st.connectors.get(point)
        if conn is None or conn.preparing_since is None or conn.status is not _S.PREPARING:
            return
        if self._now < conn.preparing_since + self.timings.preparing_timeout:
            return
        if any(s.point == point for s in st.sessions.values()):
            return
        conn.preparing_since = None
        self._failed_session(st, point, "stuck in Preparing")

    # ------------------------------------------------------------------ station events

    def _new_station(self, station_id: str) -> StationState:
        st = StationState(station_id=station_id)
        self._s.stations[station_id] = st
        return st

    def _timeline(
        self, st: StationState, kind: str, text: str, connector: int | None = None
    ) -> None:
        timeline = st.timeline
        timeline.append(TimelineEntry(at=self._now, kind=kind, text=text, connector=connector))
        size = self.limits.timeline_size
        if len(timeline) > size + 32:
            del timeline[: len(timeline) - size]

    def _runs_of(self, st: StationState) -> list[RunState]:
        runs = self._s.runs
        return [runs[rid] for rid in st.run_ids if rid in runs]

    def _message_seen(self, st: StationState) -> None:
        for run in self._runs_of(st):
            if run.detection is Detection.SILENT:
                self._health(run, True, immediate=True)

    def _connected(self, st: StationState, why: str) -> None:
        st.connected = True
        st.connected_at = self._now
        self._timeline(st, "connected", why)
        self._push_silence(st)
        for run in self._runs_of(st):
            if run.detection is Detection.OFFLINE:
                self._health(run, True)
            elif run.phase == Phase.WAIT_PRECONDITION:
                self._later.append(run)  # after the event that reconnected it is applied

    def _on_connected(self, st: StationState, event: StationConnected) -> None:
        if event.protocol.startswith("ocpp2"):
            st.v2 = True
        self._connected(st, f"connected ({event.protocol})")

    def _on_disconnected(self, st: StationState, event: StationDisconnected) -> None:
        if not st.connected:
            return
        st.connected = False
        st.disconnected_at = self._now
        self._timeline(st, "disconnected", event.reason)
        for run in self._runs_of(st):
            if run.detection is Detection.SILENT:
                self._finish(run, "superseded")
            elif run.detection is Detection.OFFLINE:
                self._health(run, False)
        if st.reset_owner is None:
            self._went_offline(st)

    def _went_offline(self, st: StationState) -> None:
        """The station is not connected (disconnect seen, or a command found it offline)."""
        if st.connected:
            st.connected = False
            st.disconnected_at = self._now
            self._timeline(st, "disconnected", "a command found the station offline")
        if st.reset_owner is not None:
            return
        pb = self.playbooks.for_detection(Detection.OFFLINE)
        key = fault_key(st.station_id, 0, pb.name)
        if key in self._s.run_by_key:
            return
        for run in self._runs_of(st):
            if run.detection is Detection.SILENT:
                self._finish(run, "superseded")
        self._touch(self._detect(st, 0, pb, Detection.OFFLINE))

    def _on_booted(self, st: StationState, event: StationBooted) -> None:
        st.last_boot = self._now
        text = f"boot {event.vendor} {event.model}"
        if event.firmware_version:
            text += f" fw {event.firmware_version}"
        if event.reason:
            text += f" ({event.reason})"
        self._timeline(st, "boot", text)
        for conn in st.connectors.values():
            conn.status = _S.UNKNOWN
            conn.preparing_since = None
        expected = False
        for run in self._runs_of(st):
            if run.expect_boot and not run.boot_seen:
                run.boot_seen = True
                expected = True
            if run.detection is Detection.BOOT_LOOP:
                run.healthy_since = self._now
            elif run.detection in (Detection.SILENT, Detection.OFFLINE):
                continue
            else:
                run.healthy_since = None
                run.status_clears = True
            self._touch(run)
        if (
            st.operator_reset_at is not None
            and self._now - st.operator_reset_at <= self.timings.reset_timeout
        ):
            st.operator_reset_at = None
            expected = True
        if expected:
            return
        window = self.timings.boot_loop_window
        boots = [t for t in st.boots if t > self._now - window]
        boots.append(self._now)
        st.boots = boots
        if len(boots) >= self.limits.boot_loop_boots:
            pb = self.playbooks.for_detection(Detection.BOOT_LOOP)
            if fault_key(st.station_id, 0, pb.name) not in self._s.run_by_key:
                run = self._detect(st, 0, pb, Detection.BOOT_LOOP)
                run.healthy_since = self._now
                run.notes.append(f"{len(boots)} boots within {window}")
                self._touch(run)

    def _connector(self, st: StationState, point: int) -> ConnectorState:
        conn = st.connectors.get(point)
        if conn is None:
            conn = st.connectors[point] = ConnectorState()
        return conn

    def _on_status(self, st: StationState, event: ConnectorStatusChanged) -> None:
        point = _point(event.evse_id, event.connector_id)
        if event.evse_id is not None:
            st.v2 = True
        conn = self._connector(st, point)
        if event.evse_id is not None and event.connector_id:
            conn.connector_id = event.connector_id
        code = event.error_code
        error = code not in _NO_ERROR
        status = event.status
        previous = conn.status
        if previous is not status or conn.error_code != code:
            conn.since = self._now
            text = event.raw_status
            if error:
                text += f" {code}"
            if event.vendor_error_code:
                text += f" vendor {event.vendor_error_code}"
            self._timeline(st, "status", text, point)
        conn.status = status
        conn.error_code = code
        if status is _S.PREPARING:
            if previous is not _S.PREPARING:
                conn.preparing_since = self._now
                self._push(
                    self._now + self.timings.preparing_timeout,
                    "prep",
                    f"{point}|{st.station_id}",
                )
        else:
            conn.preparing_since = None
        healthy = status in HEALTHY_STATUSES and not error
        specific = False
        for run in self._runs_of(st):
            if run.point != point and not (run.point == 0 and st.v2):
                if run.phase == Phase.WAIT_PRECONDITION:
                    self._touch(run)
                continue
            detection = run.detection
            if detection in FAULT_DETECTIONS:
                if detection is Detection.FAULT and run.point == point:
                    specific = True
                if status is _S.FAULTED:
                    run.status_clears = True
                if healthy:
                    if (
                        detection is Detection.FAULTED_STATUS
                        or run.from_code
                        or run.status_clears
                        or (status is _S.AVAILABLE and self._playbook(run).hold_while_plugged)
                    ):
                        self._health(run, True)
                    else:
                        self._touch(run)
                elif status is _S.FAULTED or error:
                    self._health(run, False)
                else:
                    self._touch(run)
            elif detection in SERVICE_DETECTIONS:
                if run.phase == Phase.VERIFY and (not run.expect_boot or run.boot_seen):
                    self._health(run, status is _S.AVAILABLE and not error)
                else:
                    self._touch(run)
            elif run.phase == Phase.WAIT_PRECONDITION:
                self._touch(run)
        if status is _S.FAULTED and not error and not specific:
            pb = self.playbooks.for_detection(Detection.FAULTED_STATUS)
            if fault_key(st.station_id, point, pb.name) not in self._s.run_by_key:
                run = self._detect(st, point, pb, Detection.FAULTED_STATUS)
                _bounded_add(run.codes, "Faulted")
                self._touch(run)

    def _on_fault(self, st: StationState, event: FaultReported) -> None:
        point = _point(event.evse_id, event.connector_id)
        if event.evse_id is not None:
            st.v2 = True
        pb = self.playbooks.classify(event.code, event.component, event.variable, event.vendor_code)
        run = self._run_for_key(fault_key(st.station_id, point, pb.name))
        text = event.code + (f" vendor {event.vendor_code}" if event.vendor_code else "")
        if event.info:
            text += f" ({event.info})"
        if event.cleared:
            self._timeline(st, "fault_cleared", text, point)
            if run is not None:
                self._health(run, True)
            return
        self._timeline(st, "fault", text, point)
        if run is None:
            generic = self._run_for_key(
                fault_key(
                    st.station_id, point,
                    self.playbooks.for_detection(Detection.FAULTED_STATUS).name,
                )
            )
            if generic is not None and generic.phase == Phase.GRACE:
                run = self._reclassify(generic, pb)
                if run is None:
                    return
                run.detection = Detection.FAULT
            else:
                run = self._detect(st, point, pb, Detection.FAULT)
            run.from_code = event.component is None
            if not run.from_code:
                conn = st.connectors.get(point)
                run.status_clears = conn is not None and conn.status is _S.FAULTED
        else:
            self._health(run, False)
        _bounded_add(run.codes, event.code)
        _bounded_add(run.vendor_codes, event.vendor_code)
        if event.component:
            _bounded_add(run.components, f"{event.component}.{event.variable or ''}")
        self._touch(run)

    def _live_session(self, st: StationState, point: int | None) -> bool:
        """A session is live on the station (``point=None``) or on one connector."""
        connectors = st.connectors
        for session in st.sessions.values():
            if point is not None and session.point != point:
                continue
            conn = connectors.get(session.point)
            if conn is None or conn.status not in _SESSION_OVER:
                return True
        for p, conn in connectors.items():
            if (point is None or p == point) and conn.status in CHARGING_STATUSES:
                return True
        return False

    def _on_tx_started(self, st: StationState, event: TransactionStarted) -> None:
        point = _point(event.evse_id, event.connector_id)
        if len(st.sessions) > 16:
            cutoff = self._now - timedelta(days=2)
            for tx, session in list(st.sessions.items()):
                if session.started_at < cutoff:
                    del st.sessions[tx]
        st.sessions[event.transaction_id] = SessionState(
            point=point, started_at=self._now, meter_start_wh=event.meter_start_wh
        )
        self._connector(st, point).preparing_since = None
        self._timeline(st, "session_started", f"transaction {event.transaction_id}", point)

    def _on_meter(self, st: StationState, event: MeterValuesReceived) -> None:
        if event.transaction_id is None:
            return
        session = st.sessions.get(event.transaction_id)
        if session is None:
            return
        for sample in event.samples:
            if sample.measurand != "Energy.Active.Import.Register":
                continue
            value = sample.value * 1000.0 if sample.unit == "kWh" else sample.value
            if session.meter_start_wh is None:
                session.meter_start_wh = value
            session.meter_last_wh = value

    def _on_tx_ended(self, st: StationState, event: TransactionEnded) -> None:
        session = st.sessions.pop(event.transaction_id, None)
        if session is None:
            self._timeline(st, "session_ended", f"transaction {event.transaction_id}")
            return
        point = session.point
        stop = event.meter_stop_wh if event.meter_stop_wh is not None else session.meter_last_wh
        energy = None
        if stop is not None and session.meter_start_wh is not None:
            energy = stop - session.meter_start_wh
        text = f"transaction {event.transaction_id}"
        if energy is not None:
            text += f", {energy:.0f} Wh"
        if event.reason:
            text += f" ({event.reason})"
        self._timeline(st, "session_ended", text, point)
        if energy is not None:
            if energy < self.limits.min_session_energy_wh:
                self._failed_session(st, point, f"session ended with {energy:.0f} Wh")
            else:
                self._successful_session(st, point)
        for run in self._runs_of(st):
            if run.phase == Phase.WAIT_PRECONDITION:
                self._touch(run)

    def _failed_session(self, st: StationState, point: int, why: str) -> None:
        conn = self._connector(st, point)
        cutoff = self._now - self.timings.failed_session_window
        failed = [t for t in conn.failed_sessions if t > cutoff]
        failed.append(self._now)
        conn.failed_sessions = failed
        self._timeline(st, "failed_session", why, point)
        if len(failed) >= self.limits.failed_sessions:
            conn.failed_sessions = []
            pb = self.playbooks.for_detection(Detection.FAILED_SESSIONS)
            if fault_key(st.station_id, point, pb.name) not in self._s.run_by_key:
                run = self._detect(st, point, pb, Detection.FAILED_SESSIONS)
                run.notes.append(f"{len(failed)} failed sessions, last: {why}")
                self._touch(run)

    def _successful_session(self, st: StationState, point: int) -> None:
        self._connector(st, point).failed_sessions = []
        for run in self._runs_of(st):
            if run.point not in (point, 0):
                continue
            if run.detection is Detection.FAILED_SESSIONS or (
                run.detection is Detection.DRIVER_REPORT
                and run.category not in _NOT_CLEARED_BY_SESSION
            ):
                self._health(run, True, immediate=True)

    def _on_log_progress(self, st: StationState, event: LogUploadProgress) -> None:
        request_id = event.request_id if event.request_id is not None else st.last_log_request
        if request_id is None:
            return
        ref = self._s.log_requests.get(request_id)
        run = self._s.runs.get(ref.run_id) if ref is not None else None
        if run is None or run.log_request_id != request_id:
            return
        status = event.status
        if run.log_status is not None and LogUploadStatus(run.log_status) in FINAL_LOG_STATUSES:
            return
        if run.log_status == status.value:
            return
        run.log_status = status.value
        self._timeline(st, "log", f"log {request_id}: {event.raw_status}")
        if (
            status in FAILED_LOG_STATUSES
            and self._current_action(run) is StepAction.LOG
            and run.phase == Phase.LOG_WAIT
        ):
            self._end_step(run, StepResult.FAILED, f"log upload: {event.raw_status}")
            self._next(run)
        self._touch(run)

    def _on_driver_report(self, st: StationState, event: DriverFaultReported) -> None:
        category = DriverCategory.parse(str(event.category))
        point = event.connector_id or 0
        report = DriverReport(
            report_id=event.report_id, at=self._now, category=category.value,
            text=event.text, connector=event.connector_id,
        )
        self._timeline(st, "driver_report", f"{category.value}: {event.text}"[:200],
                       event.connector_id)
        pb = self.playbooks.for_driver(category)
        if category is DriverCategory.PHYSICAL_DAMAGE:
            run = self._run_for_key(fault_key(st.station_id, point, pb.name))
        else:
            run = self._joinable_run(st, point)
        if run is None:
            run = self._detect(st, point, pb, Detection.DRIVER_REPORT)
            run.category = category.value
            run.reports.append(report)
        else:
            if len(run.reports) < _MAX_REPORTS:
                run.reports.append(report)
            self._ticket_note(run, f"driver report {event.report_id}: {category.value}")
        self._touch(run)

    def _on_diagnosis_requested(self, st: StationState, event: DiagnosisRequested) -> None:
        point = event.connector_id or 0
        self._timeline(st, "diagnosis_requested", f"by {event.requested_by}",
                       event.connector_id)
        run = self._joinable_run(st, point)
        pb = self.playbooks.for_detection(Detection.OPERATOR)
        if run is None:
            run = self._detect(st, point, pb, Detection.OPERATOR)
            run.grace_until = self._now
        elif run.phase == Phase.GRACE:
            run.grace_until = self._now
        elif run.phase == Phase.TICKETED:
            # fresh status, configuration and log for the ticket
            run.plan.extend(pb.diagnose)
            self._begin_step(run)
        run.notes.append(f"diagnosis requested by {event.requested_by}")
        self._touch(run)

    def _joinable_run(self, st: StationState, point: int) -> RunState | None:
        """The run a report about ``point`` joins: same connector first, then any on the
        station when the report names none, then a station-level run."""
        runs = self._runs_of(st)
        for run in runs:
            if run.point == point and run.category != DriverCategory.PHYSICAL_DAMAGE.value:
                return run
        for run in runs:
            if (point == 0 or run.point == 0) and (
                run.category != DriverCategory.PHYSICAL_DAMAGE.value
            ):
                return run
        return None

    # ------------------------------------------------------------------ runs

    def _run_for_key(self, key: str) -> RunState | None:
        run_id = self._s.run_by_key.get(key)
        return None if run_id is None else self._s.runs.get(run_id)

    def _playbook(self, run: RunState) -> Playbook:
        return self.playbooks.get(run.fault_class) or self.playbooks.default

    def _detect(
        self, st: StationState, point: int, pb: Playbook, detection: Detection
    ) -> RunState:
        """Start a run for a newly detected fault (the caller fills details, then touches)."""
        now = self._now
        key = fault_key(st.station_id, point, pb.name)
        window = self.timings.recurrence_window
        occurrences = [t for t in self._s.occurrences.get(key, ()) if t > now - window]
        occurrences.append(now)
        self._s.occurrences[key] = occurrences
        if len(self._s.occurrences) > self._prune_at:
            self._prune_history()
        self._s.seq += 1
        run_id = f"{st.station_id}:{point}:{pb.name}:{now:%Y%m%dT%H%M%S}Z-{self._s.seq}"
        if pb.immediate:
            grace = _ZERO
        elif detection is Detection.OFFLINE:
            grace = self.timings.playbook(pb.grace, self.timings.offline_grace)
        else:
            grace = self.timings.playbook(pb.grace, self.timings.grace)
        run = RunState(
            run_id=run_id, station_id=st.station_id, point=point, fault_class=pb.name,
            detection=detection, phase=Phase.GRACE, started_at=now, updated_at=now,
            plan=list(pb.plan()), grace_until=now + grace, safety=pb.safety,
        )
        self._s.runs[run_id] = run
        self._s.run_by_key[key] = run_id
        st.run_ids.append(run_id)
        ticket = self._active_ticket(key)
        limit = pb.max_occurrences if pb.max_occurrences is not None else (
            self.limits.max_occurrences
        )
        fix = self._s.fixes.get(key)
        if ticket is not None:
            run.ticket_id = ticket.ticket_id
            run.ticket_base = [len(ticket.steps), len(ticket.findings), len(ticket.reports)]
            run.plan = []
            run.phase = Phase.TICKETED
            run.grace_until = None
            self._ticket_note(run, "fault reported again")
        elif fix is not None and now - fix.at <= self.timings.flap_window:
            run.escalation = TicketReason.FLAPPING
            run.notes.append(
                f"back {now - fix.at} after {fix.how} at {fix.at.isoformat()} (run {fix.run_id})"
            )
            self._escalate(run, keep_current=False)
        elif limit and len(occurrences) >= limit:
            run.escalation = TicketReason.RECURRENCE
            run.notes.append(f"{len(occurrences)} occurrences within {window}")
            self._escalate(run, keep_current=False)
        self._dirty[run_id] = run
        return run

    def _escalate(self, run: RunState, *, keep_current: bool) -> None:
        """Replace what is left of the plan by ticket[, set_inoperative], then diagnostics."""
        done = {
            record.action for record in run.steps
            if record.action in DIAGNOSTIC_ACTIONS and record.result is StepResult.DONE
        }
        head = run.plan[: run.step_index + 1] if keep_current else run.plan[: run.step_index]
        rest = run.plan[len(head):]
        tail: list[Step] = []
        if run.ticket_id is None:
            tail.append(Step(StepAction.TICKET, priority=Priority.P1 if run.safety else None))
        if run.safety and not any(s.action is StepAction.SET_INOPERATIVE for s in head):
            tail.append(Step(StepAction.SET_INOPERATIVE))
        tail += [s for s in rest if s.action in DIAGNOSTIC_ACTIONS and s.action not in done]
        run.plan = head + tail
        if run.phase == Phase.GRACE:
            run.grace_until = self._now

    def _reclassify(self, run: RunState, pb: Playbook) -> RunState | None:
        """Switch a run to another fault class; ``None`` when that key already has a run."""
        new_key = fault_key(run.station_id, run.point, pb.name)
        if new_key in self._s.run_by_key:
            other = self._run_for_key(new_key)
            if other is not None:
                other.findings.extend(run.findings[: _MAX_FINDINGS - len(other.findings)])
                other.notes.append(f"merged run {run.run_id}")
                self._touch(other)
            self._finish(run, "merged")
            return None
        old_key = run.key
        if self._s.run_by_key.get(old_key) == run.run_id:
            del self._s.run_by_key[old_key]
        run.notes.append(f"reclassified from {run.fault_class} to {pb.name}")
        run.fault_class = pb.name
        run.safety = run.safety or pb.safety
        self._s.run_by_key[new_key] = run.run_id
        done = {r.action for r in run.steps if r.result is StepResult.DONE}
        keep = run.step_index + 1 if run.phase != Phase.GRACE else 0
        rest = [
            s for s in pb.plan()
            if not (s.action in DIAGNOSTIC_ACTIONS and s.action in done)
        ]
        run.plan = run.plan[:keep] + rest
        if run.phase == Phase.GRACE and pb.immediate:
            run.grace_until = self._now
        fix = self._s.fixes.get(new_key)
        if (
            run.phase == Phase.GRACE
            and run.escalation is None
            and run.ticket_id is None
            and fix is not None
            and self._now - fix.at <= self.timings.flap_window
        ):
            # The generic class (e.g. a 2.0.1 Faulted status before its NotifyEvent) did not
            # know the fix; the specific one does: back too soon after a fix is flapping.
            run.escalation = TicketReason.FLAPPING
            run.notes.append(
                f"back {self._now - fix.at} after {fix.how} at {fix.at.isoformat()} "
                f"(run {fix.run_id})"
            )
            self._escalate(run, keep_current=False)
        return run

    def _touch(self, run: RunState) -> None:
        """Mark a run changed, advance it as far as ``now`` allows, and reschedule it."""
        if run.phase == Phase.DONE:
            return
        self._dirty[run.run_id] = run
        run.updated_at = self._now
        for _ in range(64):
            if not self._advance(run) or run.phase == Phase.DONE:
                break
        if run.phase != Phase.DONE:
            self._schedule(run)

    def _settle(self, run: RunState) -> timedelta:
        if run.detection is Detection.BOOT_LOOP:
            return self.timings.boot_loop_window
        if run.detection is Detection.SILENT:
            return _ZERO
        if run.phase == Phase.VERIFY and run.step_index < len(run.plan):
            step = run.plan[run.step_index]
            if step.settle is not None:
                return self.timings.playbook(step.settle, self.timings.settle)
        return self.timings.playbook(self._playbook(run).settle, self.timings.settle)

    def _stable(self, run: RunState) -> bool:
        since = run.healthy_since
        return since is not None and self._now >= since + self._settle(run)

    def _advance(self, run: RunState) -> bool:
        """One transition that ``now`` makes due; ``True`` when something changed."""
        now = self._now
        phase = run.phase
        if phase == Phase.GRACE:
            if run.grace_until is not None and now < run.grace_until:
                return False
            run.grace_until = None
            if (
                run.escalation is None
                and self._playbook(run).hold_while_plugged
                and self._plugged(run)
            ):
                run.phase = Phase.HOLD_PLUGGED
                return True
            self._begin_step(run)
            return True
        if phase == Phase.HOLD_PLUGGED:
            if self._plugged(run):
                return False
            self._begin_step(run)
            return True
        if phase == Phase.DONE:
            return False
        if self._stable(run):
            if phase != Phase.VERIFY:
                self._healthy(run)
                return True
            if not run.expect_boot or run.boot_seen:
                self._verified(run)
                return True
        if phase == Phase.COMMAND:
            if run.command_deadline is not None and now >= run.command_deadline:
                command_id = run.pending_command
                if command_id is not None:
                    self._s.pending.pop(command_id, None)
                run.pending_command = None
                run.command_deadline = None
                record = run.steps[-1]
                action = type(record.commands[-1]).__name__ if record.commands else "?"
                self._outcome(
                    run,
                    CommandOutcome(
                        status=OutcomeStatus.TIMEOUT, action=action,
                        detail=f"no outcome within {self.timings.command_timeout}",
                    ),
                )
                return True
            return False
        if phase == Phase.VERIFY:
            if run.verify_deadline is not None and now >= run.verify_deadline:
                self._verify_failed(run)
                return True
            return False
        if phase == Phase.LOG_WAIT:
            if run.verify_deadline is not None and now >= run.verify_deadline:
                detail = "no final log status" if run.log_status != _U.UPLOADED.value else (
                    "log uploaded but not analysed"
                )
                limit = self.timings.log_timeout
                self._end_step(run, StepResult.FAILED, f"{detail} within {limit}")
                self._next(run)
                return True
            return False
        if phase == Phase.WAIT_PRECONDITION:
            before = (run.phase, run.step_index, run.commands_sent, run.wait_reason)
            self._begin_step(run)
            return (run.phase, run.step_index, run.commands_sent, run.wait_reason) != before
        return False

    def _plugged(self, run: RunState) -> bool:
        """A vehicle may be plugged in (an unknown status, e.g. right after a boot, counts)."""
        st = self._s.stations[run.station_id]
        conn = st.connectors.get(run.point)
        return conn is None or conn.status in PLUGGED_STATUSES or conn.status is _S.UNKNOWN

    def _current_action(self, run: RunState) -> StepAction | None:
        if run.step_index < len(run.plan):
            return run.plan[run.step_index].action
        return None

    def _health(self, run: RunState, healthy: bool, *, immediate: bool = False) -> None:
        """A health signal for a run: a clear during grace ends it at once."""
        if run.phase == Phase.DONE:
            return
        if healthy:
            if run.phase in (Phase.GRACE, Phase.HOLD_PLUGGED) and run.ticket_id is None:
                self._finish(run, "cleared")
                return
            if immediate:
                if run.phase == Phase.VERIFY and run.step_index < len(run.plan) and (
                    not run.expect_boot or run.boot_seen
                ):
                    self._verified(run)
                else:
                    self._healthy(run)
                return
            if run.healthy_since is None:
                run.healthy_since = self._now
        else:
            if run.healthy_since is not None and run.ticket_id is not None:
                self._ticket_note(
                    run, f"fault reported again (healthy since {run.healthy_since.isoformat()})"
                )
            run.healthy_since = None
        self._touch(run)

    def _begin_step(self, run: RunState) -> None:
        """Start the step at ``run.step_index`` (or wait for its preconditions)."""
        st = self._s.stations[run.station_id]
        while True:
            if run.phase == Phase.DONE:
                return
            if run.step_index >= len(run.plan):
                self._plan_done(run)
                return
            step = run.plan[run.step_index]
            action = step.action
            if action is StepAction.TICKET:
                self._open_ticket(run, step.priority)
                self._record(run, step, StepResult.DONE, f"ticket {run.ticket_id}")
                run.step_index += 1
                continue
            if action in REMEDIAL_ACTIONS and run.ticket_id is None and self._stable(run):
                self._healthy(run)
                return
            if action in RESET_ACTIONS:
                why = self._reset_forbidden(run, st)
                if why is not None:
                    self._record(run, step, StepResult.SKIPPED, why)
                    run.step_index += 1
                    continue
            if action is not StepAction.WAIT:
                if not st.connected:
                    self._wait(run, "station offline")
                    return
                blocker = self._blocker(run, step, st)
                if blocker is not None:
                    if run.wait_until is None:
                        run.wait_until = self._now + self.timings.idle_wait
                    if self._now < run.wait_until:
                        self._wait(run, blocker)
                        return
                    self._record(
                        run, step, StepResult.SKIPPED,
                        f"{blocker} for longer than {self.timings.idle_wait}",
                    )
                    run.step_index += 1
                    continue
            run.wait_reason = None
            if action is StepAction.WAIT:
                self._record(run, step, StepResult.PENDING)
                run.phase = Phase.VERIFY
                run.expect_boot = False
                run.verify_deadline = self._now + self.timings.playbook(
                    step.timeout, self.timings.step_timeout
                )
                self._seed_health(run, st)
                return
            self._record(run, step, StepResult.PENDING)
            self._send(run, step, st)
            return

    def _wait(self, run: RunState, reason: str) -> None:
        run.phase = Phase.WAIT_PRECONDITION
        run.wait_reason = reason

    def _reset_forbidden(self, run: RunState, st: StationState) -> str | None:
        if run.safety or self._playbook(run).safety:
            return "safety fault: no remote reset"
        for other in self._runs_of(st):
            if other is not run and other.safety:
                return f"safety fault {other.fault_class} on the station: no remote reset"
        cutoff = self._now - self.timings.reset_budget_window
        st.resets = [t for t in st.resets if t > cutoff]
        if len(st.resets) >= self.limits.resets_per_day:
            return f"reset budget exhausted ({self.limits.resets_per_day} per day)"
        return None

    def _blocker(self, run: RunState, step: Step, st: StationState) -> str | None:
        action = step.action
        if action in RESET_ACTIONS:
            if st.reset_owner is not None and st.reset_owner != run.run_id:
                return "another reset in flight"
            if not step.allow_during_session and self._live_session(st, None):
                return "session live on the station"
        elif (
            action in (StepAction.UNLOCK, StepAction.AVAILABILITY_CYCLE)
            and not step.allow_during_session
            and self._live_session(st, run.point)
        ):
            return "session live on the connector"
        return None

    def _record(
        self, run: RunState, step: Step, result: StepResult, detail: str | None = None
    ) -> None:
        run.steps.append(
            StepRecord(
                index=run.step_index, action=step.action.value, started_at=self._now,
                result=result, detail=detail,
                finished_at=None if result is StepResult.PENDING else self._now,
            )
        )

    def _end_step(
        self,
        run: RunState,
        result: StepResult,
        detail: str | None = None,
        data: dict[str, object] | None = None,
    ) -> None:
        if run.steps and run.steps[-1].result is StepResult.PENDING:
            record = run.steps[-1]
            record = run.steps[-1] = dataclasses.replace(
                record, result=result, finished_at=self._now,
                detail=detail if detail is not None else record.detail,
                data={**record.data, **data} if data else record.data,
            )
            if run.ticket_id is not None and result is not StepResult.CANCELLED:
                text = f"{record.action}: {result.value}"
                self._ticket_note(run, text + (f" ({record.detail})" if record.detail else ""))
        run.verify_deadline = None
        if run.expect_boot:
            run.expect_boot = False
            self._release_reset(run)

    def _release_reset(self, run: RunState) -> None:
        st = self._s.stations.get(run.station_id)
        if st is not None and st.reset_owner == run.run_id:
            st.reset_owner = None
            for other in self._runs_of(st):
                if other is not run and other.phase == Phase.WAIT_PRECONDITION:
                    self._dirty[other.run_id] = other
                    self._schedule_now(other)

    def _schedule_now(self, run: RunState) -> None:
        self._queued[run.run_id] = self._now
        self._push(self._now, "run", run.run_id)

    def _next(self, run: RunState) -> None:
        run.step_index += 1
        self._begin_step(run)

    def _command(self, run: RunState, step: Step, st: StationState) -> StationCommand:
        point = run.point
        conn = st.connectors.get(point)
        evse = point if st.v2 and point else None
        if st.v2:
            connector = (conn.connector_id if conn and conn.connector_id else 1) if point else None
        else:
            connector = point or None
        action = step.action
        if action is StepAction.STATUS:
            return TriggerMessage(TriggerKind.STATUS_NOTIFICATION, evse_id=evse,
                                  connector_id=connector)
        if action is StepAction.CONFIGURATION:
            return GetConfiguration(keys=step.keys)
        if action is StepAction.LOG:
            self._s.request_seq += 1
            request_id = self._s.request_seq
            run.log_request_id = request_id
            run.log_status = None
            run.log_analysed = False
            st.last_log_request = request_id
            self._s.log_requests[request_id] = LogRequestRef(
                run_id=run.run_id, station_id=st.station_id, ticket_id=run.ticket_id
            )
            if len(self._s.log_requests) > _MAX_LOG_REFS:
                oldest = next(iter(self._s.log_requests))
                self._touched.add(self._s.log_requests.pop(oldest).station_id)
            return RequestLog(
                location=self._location(st.station_id, request_id), request_id=request_id,
                kind=step.log_kind, since=self._now - self.timings.log_lookback,
            )
        if action is StepAction.PROBE:
            return TriggerMessage(TriggerKind.HEARTBEAT)
        if action is StepAction.UNLOCK:
            return UnlockConnector(connector_id=connector or 1, evse_id=evse)
        if action is StepAction.AVAILABILITY_CYCLE:
            operative = bool(run.steps and run.steps[-1].command_ids)
            return ChangeAvailability(
                operative=operative, evse_id=evse, connector_id=None if st.v2 else connector
            )
        if action is StepAction.SET_INOPERATIVE:
            return ChangeAvailability(
                operative=False, evse_id=evse, connector_id=None if st.v2 else connector
            )
        reset_evse = evse if step.scope == "evse" else None
        if action is StepAction.SOFT_RESET:
            return SoftReset(evse_id=reset_evse)
        if action is StepAction.HARD_RESET:
            return HardReset(evse_id=reset_evse)
        raise AssertionError(f"no command for {action}")

    def _send(self, run: RunState, step: Step, st: StationState) -> None:
        command = self._command(run, step, st)
        command_id = f"{run.run_id}:{run.step_index}:{run.commands_sent}"
        run.commands_sent += 1
        run.pending_command = command_id
        run.command_deadline = self._now + self.timings.command_timeout
        run.phase = Phase.COMMAND
        self._s.pending[command_id] = PendingCommand(run_id=run.run_id, sent_at=self._now)
        record = run.steps[-1]
        run.steps[-1] = dataclasses.replace(
            record,
            command_ids=(*record.command_ids, command_id),
            commands=(*record.commands, command),
        )
        if step.action in RESET_ACTIONS and not (step.scope == "evse" and st.v2 and run.point):
            st.resets.append(self._now)
            st.reset_owner = run.run_id
            run.expect_boot = True
            run.boot_seen = False
        self._timeline(st, "command", f"{type(command).__name__} ({command_id})", run.point)
        self._out.append(SendCommand(command_id, st.station_id, command, run.run_id))

    def _outcome(self, run: RunState, outcome: CommandOutcome) -> None:
        """Handle the outcome of the run's pending command (already unlinked)."""
        if run.phase != Phase.COMMAND or run.step_index >= len(run.plan):
            return
        st = self._s.stations[run.station_id]
        step = run.plan[run.step_index]
        action = step.action
        record = run.steps[-1]
        detail = outcome.detail or outcome.error_code or outcome.station_status
        run.steps[-1] = dataclasses.replace(
            record, outcome=outcome.status.value, station_status=outcome.station_status,
            detail=detail,
        )
        self._timeline(st, "outcome", f"{outcome.action}: {outcome.status.value}"
                       + (f" ({outcome.station_status})" if outcome.station_status else ""),
                       run.point)
        if not outcome.ok:
            if outcome.status is OutcomeStatus.OFFLINE:
                self._end_step(run, StepResult.FAILED, detail or "station offline")
                self._went_offline(st)
            else:
                self._end_step(run, StepResult.FAILED, detail or outcome.status.value)
            self._next(run)
            return
        if action in (StepAction.STATUS, StepAction.SET_INOPERATIVE):
            self._end_step(run, StepResult.DONE)
            self._next(run)
        elif action is StepAction.CONFIGURATION:
            self._end_step(run, StepResult.DONE, data=dict(outcome.data))
            self._next(run)
        elif action is StepAction.LOG:
            data: dict[str, object] = {"request_id": run.log_request_id}
            if run.log_analysed:
                self._end_step(run, StepResult.DONE, "log analysed", data)
                self._next(run)
            elif run.log_status is not None and _U(run.log_status) in FAILED_LOG_STATUSES:
                self._end_step(run, StepResult.FAILED, f"log upload: {run.log_status}", data)
                self._next(run)
            else:
                run.phase = Phase.LOG_WAIT
                run.verify_deadline = self._now + self.timings.log_timeout
        elif action is StepAction.PROBE:
            self._end_step(run, StepResult.VERIFIED, "the station answered")
            if run.detection is Detection.SILENT:
                self._finish(run, "recovered")
            else:
                self._next(run)
        elif action is StepAction.AVAILABILITY_CYCLE and len(run.steps[-1].command_ids) < 2:
            self._send(run, step, st)
        else:
            run.phase = Phase.VERIFY
            if action in RESET_ACTIONS:
                timeout = self.timings.playbook(step.timeout, self.timings.reset_timeout)
                if run.expect_boot and not run.boot_seen:
                    run.healthy_since = None
            else:
                timeout = self.timings.playbook(step.timeout, self.timings.step_timeout)
                self._seed_health(run, st)
            run.verify_deadline = self._now + timeout

    def _seed_health(self, run: RunState, st: StationState) -> None:
        """At the start of a verification: service runs judge the connector as it is now."""
        if run.detection in SERVICE_DETECTIONS:
            conn = st.connectors.get(run.point)
            ok = conn is not None and conn.status is _S.AVAILABLE and (
                conn.error_code in _NO_ERROR
            )
            run.healthy_since = self._now if ok else None

    def _verified(self, run: RunState) -> None:
        step = run.plan[run.step_index]
        since = run.healthy_since
        detail = "healthy" + (f" since {since.isoformat()}" if since else "")
        self._end_step(run, StepResult.VERIFIED, detail)
        if step.action is StepAction.WAIT:
            if run.ticket_id is not None:
                self._healthy(run)
            else:
                self._finish(run, "recovered")
            return
        self._s.fixes[run.key] = FixRecord(
            at=self._now, run_id=run.run_id, how=step.action.value, steps=list(run.steps)
        )
        self._finish(run, "fixed")

    def _verify_failed(self, run: RunState) -> None:
        st = self._s.stations[run.station_id]
        step = run.plan[run.step_index]
        if step.action is StepAction.WAIT:
            self._end_step(run, StepResult.FAILED, "the fault persisted")
        elif run.expect_boot and not run.boot_seen:
            self._end_step(run, StepResult.NOT_VERIFIED, "no reboot seen")
        else:
            self._end_step(run, StepResult.NOT_VERIFIED, "not healthy (and settled) in time")
        if not st.connected:
            self._went_offline(st)
        self._next(run)

    def _plan_done(self, run: RunState) -> None:
        if run.ticket_id is None and run.detection is not Detection.OPERATOR:
            self._open_ticket(run, None)
        if run.ticket_id is not None:
            run.phase = Phase.TICKETED
            run.wait_reason = None
        else:
            self._finish(run, "diagnosed")

    def _healthy(self, run: RunState) -> None:
        """The run's fault is gone and stayed gone for the settle period."""
        if run.ticket_id is None:
            remote = any(
                StepAction(r.action) in REMEDIAL_ACTIONS and r.command_ids for r in run.steps
            )
            self._finish(run, "recovered" if remote else "cleared")
            return
        ticket = self._s.tickets.get(run.ticket_id)
        since = run.healthy_since or self._now
        reason = f"healthy again since {since.isoformat()}"
        if ticket is None or not ticket.active:
            self._finish(run, "resolved")
            return
        auto = self._playbook(run).auto_resolve
        if auto is None:
            auto = self.limits.auto_resolve
        if auto:
            resolved = self._fill(ticket.transition(TicketStatus.RESOLVED, self._now, reason), run)
            self._put_ticket(resolved)
            self._out.append(ResolveTicket(ticket.ticket_id, reason, resolved))
            self._s.fixes[run.key] = FixRecord(at=self._now, run_id=run.run_id, how="resolved")
            self._finish(run, "resolved")
        else:
            updated = self._fill(ticket.with_note(self._now, reason), run)
            self._put_ticket(updated)
            self._out.append(UpdateTicket(ticket.ticket_id, reason, updated))
            self._finish(run, "healthy_again")

    def _finish(self, run: RunState, outcome: str) -> None:
        if run.phase == Phase.DONE:
            return
        run.outcome = outcome
        run.phase = Phase.DONE
        run.updated_at = self._now
        if run.pending_command is not None:
            self._s.pending.pop(run.pending_command, None)
            run.pending_command = None
        if run.steps and run.steps[-1].result is StepResult.PENDING:
            self._end_step(run, StepResult.CANCELLED, f"run ended: {outcome}")
        self._release_reset(run)
        self._s.runs.pop(run.run_id, None)
        if self._s.run_by_key.get(run.key) == run.run_id:
            del self._s.run_by_key[run.key]
        self._queued.pop(run.run_id, None)
        st = self._s.stations.get(run.station_id)
        if st is not None and run.run_id in st.run_ids:
            st.run_ids.remove(run.run_id)
        self._dirty[run.run_id] = run

    # ------------------------------------------------------------------ logs

    def _log_findings(
        self, run: RunState, request_id: int, records: list[FindingRecord], log_ref: str | None
    ) -> None:
        room = _MAX_FINDINGS - len(run.findings)
        run.findings.extend(records[: max(room, 0)])
        in_step = (
            run.log_request_id == request_id
            and self._current_action(run) is StepAction.LOG
            and run.phase in (Phase.LOG_WAIT, Phase.COMMAND)
        )
        if run.log_request_id == request_id:
            run.log_analysed = True
        if in_step and run.phase == Phase.LOG_WAIT:
            self._end_step(
                run, StepResult.DONE, f"{len(records)} finding(s)",
                {"request_id": request_id, "log_ref": log_ref},
            )
            self._apply_findings(run, records)
            if run.phase != Phase.DONE:
                self._next(run)
        else:
            self._apply_findings(run, records)
        if records and run.ticket_id is not None and run.phase != Phase.DONE:
            self._ticket_note(run, self._findings_note(records))
        self._touch(run)

    @staticmethod
    def _findings_note(records: list[FindingRecord]) -> str:
        return "log findings: " + "; ".join(
            f"{r.finding.severity.value}: {r.finding.finding}" for r in records[:5]
        )

    def _apply_findings(self, run: RunState, records: list[FindingRecord]) -> None:
        """Findings as evidence; a safety or escalating finding, or another fault class,
        changes what is left of the plan."""
        if not records or run.phase == Phase.DONE:
            return
        findings = [r.finding for r in records]
        if any(f.severity is Severity.SAFETY for f in findings):
            run.safety = True
            run.escalation = run.escalation or TicketReason.LOG_FINDING
            self._escalate(run, keep_current=True)
            return
        if any(f.escalate for f in findings):
            run.escalation = run.escalation or TicketReason.LOG_FINDING
            self._escalate(run, keep_current=True)
            return
        if run.ticket_id is not None:
            return
        for finding in findings:
            if finding.fault_class and finding.fault_class != run.fault_class:
                pb = self.playbooks.get(finding.fault_class)
                if pb is not None:
                    self._reclassify(run, pb)
                    return

    # ------------------------------------------------------------------ tickets

    def _put_ticket(self, ticket: Ticket) -> None:
        self._s.tickets[ticket.ticket_id] = ticket
        self._touched.add(ticket.station_id)

    def _active_ticket(self, key: str) -> Ticket | None:
        ticket_id = self._s.ticket_by_key.get(key)
        ticket = None if ticket_id is None else self._s.tickets.get(ticket_id)
        return ticket if ticket is not None and ticket.active else None

    def _priority(self, run: RunState, pb: Playbook, step_priority: Priority | None) -> Priority:
        if run.safety:
            return Priority.P1
        if step_priority is not None:
            return step_priority
        if pb.priority is not None:
            return pb.priority
        if run.detection in (Detection.OFFLINE, Detection.SILENT, Detection.BOOT_LOOP):
            return Priority.P2
        if run.point == 0:
            return Priority.P2
        if run.detection in FAULT_DETECTIONS:
            st = self._s.stations[run.station_id]
            points = [c for p, c in st.connectors.items() if p > 0]
            if points and all(c.status in (_S.FAULTED, _S.UNAVAILABLE) for c in points):
                return Priority.P2
            return Priority.P3
        return Priority.P4

    def _reason(self, run: RunState, pb: Playbook) -> TicketReason:
        if run.escalation is not None:
            return run.escalation
        if run.category == DriverCategory.PHYSICAL_DAMAGE.value:
            return TicketReason.PHYSICAL_DAMAGE
        if run.safety or pb.safety:
            return TicketReason.SAFETY
        if run.detection is Detection.OFFLINE:
            return TicketReason.OFFLINE
        return TicketReason.STEPS_EXHAUSTED

    def _open_ticket(self, run: RunState, step_priority: Priority | None) -> None:
        if run.ticket_id is not None:
            return
        pb = self._playbook(run)
        key = run.key
        existing_id = self._s.ticket_by_key.get(key)
        existing = None if existing_id is None else self._s.tickets.get(existing_id)
        if existing is not None and existing.status is not TicketStatus.CLOSED:
            if existing.status is TicketStatus.RESOLVED:
                ticket = existing.transition(TicketStatus.OPEN, self._now, "the fault returned")
            else:
                ticket = existing.with_note(self._now, "the fault was reported again")
            run.ticket_base = [len(ticket.steps), len(ticket.findings), len(ticket.reports)]
            ticket = self._fill(ticket, run)
            run.ticket_id = ticket.ticket_id
            self._put_ticket(ticket)
            self._link_log_requests(run)
            self._out.append(UpdateTicket(ticket.ticket_id, ticket.notes[-1].text, ticket))
            return
        st = self._s.stations[run.station_id]
        priority = self._priority(run, pb, step_priority)
        ticket = Ticket(
            ticket_id=f"T-{run.run_id}", run_id=run.run_id, station_id=run.station_id,
            connector=run.point, fault_class=run.fault_class, title=pb.title or pb.name,
            status=TicketStatus.OPEN, priority=priority, tier=pb.tier,
            reason=self._reason(run, pb), opened_at=self._now, updated_at=self._now,
            sla=self.sla.deadlines(st.info, priority, self._now),
        )
        ticket = self._fill(ticket, run)
        run.ticket_id = ticket.ticket_id
        self._put_ticket(ticket)
        self._s.ticket_by_key[key] = ticket.ticket_id
        self._link_log_requests(run)
        self._out.append(OpenTicket(ticket))

    def _link_log_requests(self, run: RunState) -> None:
        for record in run.steps:
            request_id = record.data.get("request_id")
            if isinstance(request_id, int) and request_id in self._s.log_requests:
                self._s.log_requests[request_id].ticket_id = run.ticket_id
        if run.log_request_id is not None and run.log_request_id in self._s.log_requests:
            self._s.log_requests[run.log_request_id].ticket_id = run.ticket_id

    def _fill(self, ticket: Ticket, run: RunState) -> Ticket:
        """The ticket with the run's current evidence."""
        st = self._s.stations[run.station_id]
        pb = self._playbook(run)
        findings = [r.finding for r in run.findings]
        actions = [pb.suggested_action] if pb.suggested_action else []
        for finding in findings:
            if finding.suggested_action and finding.suggested_action not in actions:
                actions.append(finding.suggested_action)
        parts = list(pb.parts)
        for finding in findings:
            parts += [p for p in finding.parts if p not in parts]
        timeline = tuple(
            e for e in st.timeline if e.connector in (None, 0, run.point)
        )[-_TICKET_TIMELINE:]
        known = {n.text for n in ticket.notes}
        added = tuple(TicketNote(at=self._now, text=n) for n in run.notes if n not in known)
        b_steps, b_findings, b_reports = run.ticket_base or [0, 0, 0]
        codes = list(ticket.codes)
        vendor_codes = list(ticket.vendor_codes)
        components = list(ticket.components)
        for source, target in (
            (run.codes, codes), (run.vendor_codes, vendor_codes), (run.components, components)
        ):
            target += [c for c in source if c not in target]
        return dataclasses.replace(
            ticket, updated_at=self._now, station=st.info,
            codes=tuple(codes), vendor_codes=tuple(vendor_codes),
            components=tuple(components), timeline=timeline,
            steps=(*ticket.steps[:b_steps], *run.steps),
            findings=(*ticket.findings[:b_findings], *run.findings)[-_MAX_FINDINGS:],
            reports=(*ticket.reports[:b_reports], *run.reports)[-_MAX_REPORTS:],
            suggested_action="; ".join(actions), parts=tuple(parts),
            notes=ticket.notes + added,
        )

    def _ticket_note(self, run: RunState, note: str) -> None:
        if run.ticket_id is None:
            return
        ticket = self._s.tickets.get(run.ticket_id)
        if ticket is None or ticket.status is TicketStatus.CLOSED:
            return
        updated = self._fill(ticket.with_note(self._now, note), run)
        self._put_ticket(updated)
        self._out.append(UpdateTicket(ticket.ticket_id, note, updated))

    # ------------------------------------------------------------------ misc

    def _prune_history(self) -> None:
        now = self._now
        window = max(self.timings.recurrence_window, self.timings.flap_window)
        occurrences = {
            k: v for k, v in self._s.occurrences.items() if v and v[-1] > now - window
        }
        fixes = {k: v for k, v in self._s.fixes.items() if v.at > now - self.timings.flap_window}
        for gone in (self._s.occurrences.keys() - occurrences.keys()) | (
            self._s.fixes.keys() - fixes.keys()
        ):
            self._touched.add(station_of_key(gone))  # the key's station shard shrinks
        self._s.occurrences, self._s.fixes = occurrences, fixes
        # amortised: the next prune when the table has doubled again
        self._prune_at = max(_PRUNE_AT, 2 * len(self._s.occurrences))

    def _view(self, run: RunState) -> RunView:
        return RunView(
            run_id=run.run_id, station_id=run.station_id, connector=run.point,
            fault_class=run.fault_class, detection=run.detection.value, phase=str(run.phase),
            started_at=run.started_at, updated_at=run.updated_at,
            plan=tuple(s.action.value for s in run.plan), step_index=run.step_index,
            steps=tuple(run.steps), findings=tuple(run.findings), reports=tuple(run.reports),
            codes=tuple(run.codes), vendor_codes=tuple(run.vendor_codes),
            ticket_id=run.ticket_id,
            escalation=None if run.escalation is None else run.escalation.value,
            wait_reason=run.wait_reason, outcome=run.outcome, safety=run.safety,
            healthy_since=run.healthy_since,
        )

