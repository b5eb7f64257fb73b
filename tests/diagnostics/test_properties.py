"""Property tests: random events, outcomes, clock jumps and restarts against the invariants.

- no ticket before every allowed remote step of its playbook failed (unless a rule says so:
  safety, physical damage, flapping, recurrence, offline, a log finding);
- never a reset on a safety fault (nor on a station with one);
- never a reset while a session is live (the shipped playbooks allow none);
- at most one open ticket per fault key; a ticket id is opened once;
- never the same command id twice, restarts included; the engine never raises;
- the same inputs give the same outputs (ids and all).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diagnostics import OpenTicket, ResolveTicket, RunChanged, SendCommand, UpdateTicket
from diagnostics.actions import Action
from diagnostics.commands import HardReset, OutcomeStatus, RequestLog, SoftReset
from diagnostics.events import ConnectorStatus
from diagnostics.model import StepResult
from diagnostics.playbooks import REMEDIAL_ACTIONS
from diagnostics.tickets import ACTIVE_STATUSES, TRANSITIONS, TicketReason, TicketStatus
from tests.diagnostics.harness import PLAYBOOKS, SIGNATURES, Harness

STATUSES = ["Available", "Preparing", "Charging", "SuspendedEV", "Finishing", "Faulted",
            "Unavailable"]
ERRORS = ["NoError"] * 4 + [
    "ConnectorLockFailure", "InternalError", "OverCurrentFailure", "EVCommunicationError",
    "HighTemperature", "GroundFailure", "ReaderFailure", "PowerSwitchFailure", "OtherError",
]
COMPONENTS = [("ConnectorPlugRetentionLock", "Problem"), ("PowerContactor", "Problem"),
              ("TokenReader", "Problem"), ("RCD", "Tripped"), ("Controller", "Problem")]
LOGS = ["", "lock motor timeout", "contactor welded", "No space left on device",
        "watchdog reset", "RFID reader init failed"]
CATEGORIES = ["wont_start", "cant_stop_cable_stuck", "payment", "missing_session",
              "physical_damage", "display_or_reader", "other"]
OUTCOMES = [OutcomeStatus.ACCEPTED] * 5 + [
    OutcomeStatus.REJECTED, OutcomeStatus.TIMEOUT, OutcomeStatus.OFFLINE,
    OutcomeStatus.NOT_SUPPORTED, OutcomeStatus.CALL_ERROR,
]
ADVANCES = [1, 20, 60, 120, 300, 300, 600, 900, 1800, 3600, 4 * 3600]
EXEMPT = {TicketReason.SAFETY, TicketReason.PHYSICAL_DAMAGE, TicketReason.FLAPPING,
          TicketReason.RECURRENCE, TicketReason.OFFLINE, TicketReason.LOG_FINDING}
FAILED = {StepResult.FAILED, StepResult.NOT_VERIFIED, StepResult.SKIPPED}
_FREE = {ConnectorStatus.AVAILABLE, ConnectorStatus.FAULTED, ConnectorStatus.UNAVAILABLE,
         ConnectorStatus.RESERVED}
_CHARGING = {ConnectorStatus.CHARGING, ConnectorStatus.SUSPENDED_EV,
             ConnectorStatus.SUSPENDED_EVSE}

ops = st.one_of(
    st.tuples(st.just("status"), st.sampled_from([1, 2]), st.sampled_from(STATUSES),
              st.sampled_from(ERRORS)),
    st.tuples(st.just("advance"), st.sampled_from(ADVANCES)),
    st.tuples(st.just("finish"), st.integers(0, 7), st.sampled_from(OUTCOMES)),
    st.tuples(st.just("finish"), st.integers(0, 7), st.just(OutcomeStatus.ACCEPTED)),
    st.tuples(st.just("late"), st.integers(0, 50)),
    st.tuples(st.just("station"), st.sampled_from(["boot", "connect", "disconnect",
                                                   "heartbeat", "heartbeat"])),
    st.tuples(st.just("tx_start"), st.sampled_from([1, 2])),
    st.tuples(st.just("tx_end"), st.sampled_from([0, 10, 20_000])),
    st.tuples(st.just("log"), st.sampled_from(["Uploading", "Uploaded", "UploadFailed", "Idle"]),
              st.booleans()),
    st.tuples(st.just("analysed"), st.sampled_from(LOGS)),
    st.tuples(st.just("problem"), st.sampled_from([None, 1, 2]), st.sampled_from(COMPONENTS),
              st.booleans()),
    st.tuples(st.just("driver"), st.sampled_from(CATEGORIES), st.sampled_from([None, 1, 2])),
    st.tuples(st.just("diagnose"), st.sampled_from([None, 1])),
    st.tuples(st.just("restart")),
    st.tuples(st.just("ticket_op"), st.integers(0, 3), st.integers(0, 3)),
)


@dataclass
class Model:
    """What the test itself knows: live sessions (by the definition the issue gives)."""

    statuses: dict[int, ConnectorStatus] = field(default_factory=dict)
    sessions: dict[str, int] = field(default_factory=dict)

    def live(self) -> bool:
        for connector in self.sessions.values():
            if self.statuses.get(connector, ConnectorStatus.UNKNOWN) not in _FREE:
                return True
        return any(s in _CHARGING for s in self.statuses.values())


@dataclass
class Checker:
    harness: Harness
    model: Model = field(default_factory=Model)
    command_ids: set[str] = field(default_factory=set)
    tickets: dict[str, TicketStatus] = field(default_factory=dict)
    ticket_keys: dict[str, tuple[str, int, str]] = field(default_factory=dict)
    safety_runs: set[str] = field(default_factory=set)
    log: list[str] = field(default_factory=list)

    def check(self, actions: list[Action], live: bool) -> None:
        h = self.harness
        views = {a.run.run_id: a.run for a in actions if isinstance(a, RunChanged)}
        ended = {rid for rid, view in views.items() if view.outcome is not None}
        safety_before = self.safety_runs - ended
        for action in actions:
            self.log.append(repr(action)[:160])
            if isinstance(action, SendCommand):
                assert action.command_id not in self.command_ids, action
                self.command_ids.add(action.command_id)
                if isinstance(action.command, SoftReset | HardReset):
                    view = views[action.run_id]
                    assert not view.safety, f"reset on a safety fault: {view}"
                    assert not safety_before, f"reset while safety runs {safety_before}"
                    assert not live, "reset while a session is live"
            elif isinstance(action, OpenTicket):
                ticket = action.ticket
                key = (ticket.station_id, ticket.connector, ticket.fault_class)
                assert ticket.ticket_id not in self.tickets, "ticket opened twice"
                for other, status in self.tickets.items():
                    assert not (
                        self.ticket_keys[other] == key and status in ACTIVE_STATUSES
                    ), f"second open ticket for {key}"
                self.tickets[ticket.ticket_id] = ticket.status
                self.ticket_keys[ticket.ticket_id] = key
                if ticket.reason not in EXEMPT:
                    playbook = PLAYBOOKS.get(ticket.fault_class)
                    assert playbook is not None
                    results: dict[str, list[StepResult]] = {}
                    for record in ticket.steps:
                        results.setdefault(record.action, []).append(record.result)
                    for step in playbook.steps:
                        if step.action in REMEDIAL_ACTIONS:
                            got = results.get(step.action.value)
                            assert got and all(r in FAILED for r in got), (
                                f"ticket before {step.action.value} failed: {ticket.steps}"
                            )
            elif isinstance(action, UpdateTicket | ResolveTicket):
                self.tickets[action.ticket_id] = action.ticket.status
        active_keys = [
            (t.station_id, t.connector, t.fault_class) for t in h.engine.tickets() if t.active
        ]
        assert len(active_keys) == len(set(active_keys)), active_keys
        assert h.engine.spins == 0, "a run was woken again without progress"
        self.safety_runs = {r.run_id for r in h.engine.runs() if r.safety}

    # -- applying one operation

    def call(self, fn: Any, *args: Any, **kwargs: Any) -> None:
        h = self.harness
        before = len(h.actions)
        fn(*args, **kwargs)
        self.check(h.actions[before:], self.model.live())

    def event(self, fn: Any, *args: Any, update: Any = None) -> None:
        """Due timers first (checked against the model before the event), then the model
        update and the event (checked against the model after it)."""
        self.call(self.harness.tick)
        if update is not None:
            update()
        self.call(fn, *args)

    def apply(self, op: tuple[Any, ...]) -> None:
        h = self.harness
        model = self.model
        kind = op[0]
        if kind == "status":
            _, connector, status, error = op
            if h.v2:
                error = "NoError"
            if status == "Faulted" and error == "NoError" and not h.v2:
                error = "NoError"
            def update() -> None:
                model.statuses[connector] = ConnectorStatus(status)

            self.event(h.status, connector, status, error, update=update)
        elif kind == "advance":
            self.call(h.advance, timedelta(seconds=op[1]), quiet=True)
        elif kind == "finish":
            pending = h.pending()
            if pending:
                command = pending[op[1] % len(pending)]
                data: dict[str, Any] = {}
                self.event(lambda: h.finish(command, op[2], data=data))
        elif kind == "late":
            if h.sent:
                command = h.sent[op[1] % len(h.sent)]
                self.event(lambda: h.finish(command, OutcomeStatus.ACCEPTED))
        elif kind == "station":
            what = op[1]
            def reboot() -> None:
                if what == "boot":
                    model.statuses = {c: ConnectorStatus.UNKNOWN for c in model.statuses}

            self.event(getattr(h, what), update=reboot)
        elif kind == "tx_start":
            tx = f"tx{len(model.sessions)}-{len(h.actions)}"
            self.event(h.tx_start, op[1], tx, 1000.0,
                       update=lambda: model.sessions.__setitem__(tx, op[1]))
        elif kind == "tx_end":
            if model.sessions:
                tx = next(iter(model.sessions))
                self.event(h.tx_end, tx, 1000.0 + op[1],
                           update=lambda: model.sessions.__delitem__(tx))
        elif kind == "log":
            requests = [s.command for s in h.sent if isinstance(s.command, RequestLog)]
            if requests:
                request_id = requests[-1].request_id if op[2] else None
                self.event(h.log_progress, op[1], request_id)
        elif kind == "analysed":
            requests = [s.command for s in h.sent if isinstance(s.command, RequestLog)]
            if requests:
                findings = SIGNATURES.match(op[1])
                self.event(h.log_analysed, requests[-1].request_id, findings)
        elif kind == "problem":
            _, evse, (component, variable), cleared = op
            self.event(lambda: h.problem(evse, component, variable, cleared))
        elif kind == "driver":
            self.event(lambda: h.driver(op[1], op[2], f"R{len(h.actions)}"))
        elif kind == "diagnose":
            self.event(h.diagnose_now, op[1])
        elif kind == "restart":
            h.restart()
        elif kind == "ticket_op":
            tickets = h.engine.tickets()
            if tickets:
                ticket = tickets[op[1] % len(tickets)]
                choices = sorted(TRANSITIONS[ticket.status])
                if choices:
                    target = choices[op[2] % len(choices)]
                    self.event(
                        lambda: h._keep(
                            h.engine.ticket_status_changed(ticket.ticket_id, target, h.now)
                        )
                    )


def run_ops(v2: bool, operations: list[tuple[Any, ...]]) -> Checker:
    h = Harness(v2=v2)
    checker = Checker(h)
    checker.call(h.connect)
    checker.call(h.boot)
    for connector in (1, 2):
        checker.model.statuses[connector] = ConnectorStatus.AVAILABLE
        checker.call(h.status, connector, "Available")
    for op in operations:
        checker.apply(op)
    # let every timer run out: invariants must hold to the end
    for _ in range(6):
        checker.call(h.advance, timedelta(hours=2), quiet=True)
    return checker


@settings(
    max_examples=250, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(v2=st.booleans(), operations=st.lists(ops, max_size=70))
def test_invariants_hold_for_random_sequences(
    v2: bool, operations: list[tuple[Any, ...]]
) -> None:
    run_ops(v2, operations)


FAULT_HEAVY = st.lists(
    st.one_of(
        st.tuples(st.just("status"), st.sampled_from([1, 2]), st.sampled_from(STATUSES),
                  st.sampled_from(ERRORS[2:])),
        st.tuples(st.just("advance"), st.sampled_from([120, 300, 600, 900])),
        st.tuples(st.just("finish"), st.integers(0, 3), st.sampled_from(OUTCOMES)),
        st.tuples(st.just("station"), st.sampled_from(["boot", "heartbeat"])),
        st.tuples(st.just("tx_start"), st.sampled_from([1, 2])),
        st.tuples(st.just("tx_end"), st.just(20_000)),
        st.tuples(st.just("restart")),
    ),
    min_size=10, max_size=90,
)


@settings(max_examples=150, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(operations=FAULT_HEAVY)
def test_invariants_hold_for_fault_heavy_sequences(operations: list[tuple[Any, ...]]) -> None:
    """Mostly faults, accepted outcomes and time: reaches deep into the ladders."""
    checker = run_ops(False, operations)
    assert checker.harness.engine.snapshot().to_json()


@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(v2=st.booleans(), operations=st.lists(ops.filter(lambda o: o[0] != "restart"),
                                               max_size=50))
def test_same_inputs_same_outputs(v2: bool, operations: list[tuple[Any, ...]]) -> None:
    first = run_ops(v2, operations)
    second = run_ops(v2, operations)
    assert first.log == second.log
