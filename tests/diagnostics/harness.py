"""A test driver for the diagnostics engine: a fake clock, event builders, recorded actions."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from diagnostics import (
    DiagnosticsEngine,
    EngineState,
    OpenTicket,
    PlaybookSet,
    ResolveTicket,
    RunChanged,
    RunView,
    SendCommand,
    SlaPolicies,
    Ticket,
    Timings,
    UpdateTicket,
    load_playbooks,
    load_signatures,
    load_sla,
)
from diagnostics.actions import Action
from diagnostics.commands import CommandOutcome, OutcomeStatus, StationCommand
from diagnostics.events import (
    ConnectorStatus,
    ConnectorStatusChanged,
    DiagnosisRequested,
    DriverCategory,
    DriverFaultReported,
    EngineInput,
    FaultReported,
    HeartbeatReceived,
    LogUploadProgress,
    LogUploadStatus,
    StationBooted,
    StationConnected,
    StationDisconnected,
    TransactionEnded,
    TransactionStarted,
)
from diagnostics.signatures import LogFinding, SignatureSet
from diagnostics.state import StateDelta, assemble_state, merge_state_documents

CONFIG = Path(__file__).resolve().parents[2] / "config"
T0 = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)
PLAYBOOKS: PlaybookSet = load_playbooks(CONFIG / "playbooks.toml")
SLA: SlaPolicies = load_sla(CONFIG / "sla.toml")
SIGNATURES: SignatureSet = load_signatures(CONFIG / "log_signatures.toml")
TIMINGS = Timings()
UPLOAD = "ftp://csms.example:2121/logs"


class Harness:
    """Drives one engine; every action it returns is kept in ``actions``."""

    def __init__(
        self,
        playbooks: PlaybookSet = PLAYBOOKS,
        timings: Timings = TIMINGS,
        sla: SlaPolicies = SLA,
        station: str = "CP1",
        v2: bool = False,
    ) -> None:
        self.playbooks = playbooks
        self.timings = timings
        self.sla = sla
        self.station = station
        self.v2 = v2
        self.now = T0
        self.engine = self._engine(None)
        self.actions: list[Action] = []
        self.connected = False
        self.outcomes: dict[str, CommandOutcome] = {}
        self.stored_core = ""
        self.stored_shards: dict[str, str] = {}
        """The state as the server stores it: written by deltas after every call."""

    def _engine(self, state: EngineState | None) -> DiagnosticsEngine:
        return DiagnosticsEngine(
            self.playbooks, self.sla, self.timings, state, upload_base=UPLOAD
        )

    # -- clock and plumbing

    def _keep(self, actions: list[Action]) -> list[Action]:
        assert self.engine.spins == 0, "a run was woken again without progress"
        self.actions.extend(actions)
        self.save()
        return actions

    def save(self) -> None:
        """Write the engine's delta, as the server does, and check that the stored state
        reads back as the engine's own (a change missed by the delta shows here)."""
        self.stored_core = apply_delta(self.stored_shards, self.engine.state_delta())
        stored = merge_state_documents(self.stored_core, self.stored_shards.values())
        assert stored == json.loads(self.engine.snapshot_json()), "a delta missed a change"

    def advance(
        self, delta: timedelta | None = None, *, quiet: bool = False, **kwargs: float
    ) -> list[Action]:
        """Move the clock and tick; a connected station sends a heartbeat every 5 minutes of
        it, unless ``quiet``."""
        end = self.now + (delta if delta is not None else timedelta(**kwargs))
        out: list[Action] = []
        if not quiet:
            step = timedelta(minutes=5)
            while self.now + step < end:
                self.now += step
                out += self.tick()
                if self.connected:
                    out += self.heartbeat()
        self.now = end
        return out + self.tick()

    def tick(self) -> list[Action]:
        return self._keep(self.engine.tick(self.now))

    def observe(self, event: EngineInput) -> list[Action]:
        return self._keep(self.engine.observe(event, self.now))

    def restart(self) -> None:
        """Persist, drop the engine, restore from the stored deltas (like a server restart)."""
        self.save()
        state = assemble_state(self.stored_core, self.stored_shards.values())
        self.engine = self._engine(state)

    # -- events

    def _base(self, station: str | None) -> dict[str, Any]:
        return {"station_id": station or self.station, "at": self.now}

    def connect(self, station: str | None = None) -> list[Action]:
        protocol = "ocpp2.0.1" if self.v2 else "ocpp1.6"
        self.connected = True
        return self.observe(StationConnected(**self._base(station), protocol=protocol))

    def disconnect(self, station: str | None = None) -> list[Action]:
        self.connected = False
        return self.observe(StationDisconnected(**self._base(station), reason="closed"))

    def boot(self, station: str | None = None) -> list[Action]:
        return self.observe(
            StationBooted(**self._base(station), vendor="Acme", model="AC22",
                          firmware_version="1.2.3")
        )

    def heartbeat(self, station: str | None = None) -> list[Action]:
        return self.observe(HeartbeatReceived(**self._base(station)))

    def status(
        self,
        connector: int,
        status: str,
        error: str = "NoError",
        vendor: str | None = None,
        station: str | None = None,
    ) -> list[Action]:
        """A StatusNotification; in 1.6 an error code also yields a FaultReported (as the
        adapter does)."""
        if self.v2:
            event = ConnectorStatusChanged(
                **self._base(station), connector_id=1, evse_id=connector,
                status=ConnectorStatus.parse(status), raw_status=status,
            )
            return self.observe(event)
        out = self.observe(
            ConnectorStatusChanged(
                **self._base(station), connector_id=connector, evse_id=None,
                status=ConnectorStatus.parse(status), raw_status=status, error_code=error,
                vendor_error_code=vendor,
            )
        )
        if error != "NoError":
            out += self.observe(
                FaultReported(**self._base(station), connector_id=connector, evse_id=None,
                              code=error, vendor_code=vendor)
            )
        return out

    def fault(self, connector: int, code: str, vendor: str | None = None) -> list[Action]:
        """A 1.6 fault as the adapter reports it: status Faulted with the error code."""
        return self.status(connector, "Faulted", code, vendor)

    def problem(
        self,
        evse: int | None,
        component: str,
        variable: str = "Problem",
        cleared: bool = False,
        tech_code: str | None = None,
        station: str | None = None,
    ) -> list[Action]:
        """A 2.0.1 NotifyEvent problem, as the adapter reports it."""
        return self.observe(
            FaultReported(
                **self._base(station), connector_id=None if evse is None else 1, evse_id=evse,
                code=f"{component}.{variable}", component=component, variable=variable,
                vendor_code=tech_code, cleared=cleared,
            )
        )

    def tx_start(self, connector: int, tx: str, meter: float = 1000.0) -> list[Action]:
        return self.observe(
            TransactionStarted(
                **self._base(None), transaction_id=tx, connector_id=connector,
                evse_id=connector if self.v2 else None, id_token="TAG",
                meter_start_wh=meter, started_at=self.now,
            )
        )

    def tx_end(self, tx: str, meter: float) -> list[Action]:
        return self.observe(
            TransactionEnded(**self._base(None), transaction_id=tx, meter_stop_wh=meter,
                             stopped_at=self.now, reason="Local")
        )

    def log_progress(self, status: str, request_id: int | None) -> list[Action]:
        return self.observe(
            LogUploadProgress(**self._base(None), status=LogUploadStatus.parse(status),
                              raw_status=status, request_id=request_id)
        )

    def driver(
        self, category: str, connector: int | None = 1, report_id: str = "R1", text: str = "?"
    ) -> list[Action]:
        return self.observe(
            DriverFaultReported(**self._base(None), connector_id=connector,
                                category=DriverCategory(category), text=text,
                                report_id=report_id)
        )

    def diagnose_now(self, connector: int | None = None) -> list[Action]:
        return self.observe(
            DiagnosisRequested(**self._base(None), connector_id=connector, requested_by="ops")
        )

    def online(self, connectors: Iterable[int] = (1, 2)) -> None:
        """Connect, boot and report every connector Available."""
        self.connect()
        self.boot()
        for connector in connectors:
            self.status(connector, "Available")

    # -- commands

    @property
    def sent(self) -> list[SendCommand]:
        return [a for a in self.actions if isinstance(a, SendCommand)]

    def pending(self) -> list[SendCommand]:
        """Commands sent whose outcome was not reported (and whose run still waits)."""
        return [s for s in self.sent if s.command_id not in self.outcomes]

    def last(self, kind: type | None = None) -> SendCommand:
        for action in reversed(self.sent):
            if kind is None or isinstance(action.command, kind):
                return action
        raise AssertionError(f"no {kind} sent")

    def finish(
        self,
        command: SendCommand | None = None,
        status: OutcomeStatus = OutcomeStatus.ACCEPTED,
        **kwargs: Any,
    ) -> list[Action]:
        """Report the outcome of ``command`` (default: the last command sent)."""
        command = command or self.sent[-1]
        outcome = CommandOutcome(status=status, action=type(command.command).__name__, **kwargs)
        self.outcomes[command.command_id] = outcome
        return self._keep(self.engine.command_finished(command.command_id, outcome, self.now))

    def log_analysed(
        self, request_id: int, findings: list[LogFinding] | None = None, ref: str = "log-1"
    ) -> list[Action]:
        return self._keep(
            self.engine.log_analysed(self.station, request_id, findings or [], ref, self.now)
        )

    def complete_diagnosis(self, log_text: str = "") -> None:
        """Answer the diagnose steps: status and configuration accepted, the log uploaded and
        analysed (with the shipped signatures over ``log_text``)."""
        for _ in range(5):
            command = self.sent[-1] if self.sent else None
            if command is None or command.command_id in self.outcomes:
                return
            name = type(command.command).__name__
            if name == "TriggerMessage" and "Status" in str(command.command):
                self.finish(command)
            elif name == "GetConfiguration":
                self.finish(command, data={"configurationKey": []})
            elif name == "RequestLog":
                request_id = command.command.request_id  # type: ignore[union-attr]
                self.finish(command)
                self.log_progress("Uploading", request_id)
                self.log_progress("Uploaded", request_id)
                self.log_analysed(request_id, SIGNATURES.match(log_text))
            else:
                return

    def commands(self) -> list[str]:
        """Names of the commands sent, in order."""
        return [type(s.command).__name__ for s in self.sent]

    # -- results

    @property
    def opened(self) -> list[Ticket]:
        return [a.ticket for a in self.actions if isinstance(a, OpenTicket)]

    @property
    def resolved(self) -> list[ResolveTicket]:
        return [a for a in self.actions if isinstance(a, ResolveTicket)]

    @property
    def updates(self) -> list[UpdateTicket]:
        return [a for a in self.actions if isinstance(a, UpdateTicket)]

    def views(self) -> list[RunView]:
        return [a.run for a in self.actions if isinstance(a, RunChanged)]

    def outcomes_of_runs(self) -> dict[str, str]:
        """run id -> final outcome, for finished runs."""
        return {v.run_id: v.outcome for v in self.views() if v.outcome is not None}

    def finished(self, fault_class: str | None = None) -> list[RunView]:
        return [
            v for v in self.views()
            if v.outcome is not None and (fault_class is None or v.fault_class == fault_class)
        ]

    def active(self) -> list[RunView]:
        return self.engine.runs()

    def ticket(self) -> Ticket:
        """The latest version of the only ticket opened."""
        assert len(self.opened) == 1, self.opened
        ticket_id = self.opened[0].ticket_id
        latest = self.opened[0]
        for action in self.actions:
            if isinstance(action, UpdateTicket | ResolveTicket) and action.ticket_id == ticket_id:
                latest = action.ticket
        return latest


def apply_delta(shards: dict[str, str], delta: StateDelta) -> str:
    """Apply ``delta`` to stored ``shards`` (as the store's engine_state_shards table does);
    returns the core to store beside them."""
    if delta.full:
        shards.clear()
    for station_id, shard in delta.shards.items():
        if shard is None:
            shards.pop(station_id, None)
        else:
            shards[station_id] = shard
    return delta.core


def command_names(commands: Iterable[StationCommand]) -> list[str]:
    return [type(c).__name__ for c in commands]
