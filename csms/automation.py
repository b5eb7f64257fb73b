"""The asyncio pump around the pure diagnostics engine (like websockets' asyncio layer).

Events from the stations (after they are stored), command outcomes, analysed logs and timer
ticks go into one queue; a single task feeds them to :class:`DiagnosticsEngine` in order and
performs the actions it returns. Before performing any action the engine's snapshot is saved
(write-ahead): after a crash the restored engine knows which commands it already decided, and
never sends one twice. While the database is away these writes are retried and the pump waits:
no decided command, run update or ticket is dropped.
"""

from __future__ import annotations

import asyncio
import functools
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from csms.bus import EventBus
from csms.logs import get_logger
from csms.notices import command_notice, run_notice, station_notice, ticket_notice
from csms.protocol.common import utc_now
from csms.store import Store
from csms.tasks import cancel_and_wait, stop_if_cancelled
from csms.uploads.registry import UploadedLog
from diagnostics import (
    DiagnosticsEngine,
    EngineState,
    OpenTicket,
    OperatorDecision,
    ResolveTicket,
    RunChanged,
    RunView,
    SendCommand,
    StationInfo,
    Ticket,
    UpdateTicket,
)
from diagnostics.actions import Action
from diagnostics.commands import CommandOutcome, StationCommand
from diagnostics.events import DomainEvent, EngineInput, StationConnected
from diagnostics.serde import encode
from diagnostics.state import assemble_state
from diagnostics.tickets import TicketStatus

log = get_logger("csms.automation")

Execute = Callable[[str, StationCommand], Awaitable[CommandOutcome]]

#: Longest wait between two engine ticks (the engine also says when it needs one).
MAX_TICK = 1.0
#: Finished runs kept in memory for tests, logs and (later) the API.
FINISHED_RUNS_KEPT = 1000
#: First and longest pause between two attempts at a write the engine's actions depend on.
PERSIST_RETRY_INITIAL = 0.1
PERSIST_RETRY_MAX = 2.0
MAX_BATCH = 5000
"""Inputs fed to the engine before its state is saved once and their actions performed."""


@dataclass(frozen=True, slots=True)
class _Finished:
    command_id: str
    outcome: CommandOutcome


@dataclass(frozen=True, slots=True)
class _LogAnalysed:
    upload: UploadedLog
    findings: list[Any]


@dataclass(frozen=True, slots=True)
class _Call:
    """Run ``fn(engine, now)`` in the pump (serialised with every other input); it returns
    ``(value, actions)``: the actions are performed, the value goes to ``future``."""

    fn: Callable[[DiagnosticsEngine, datetime], tuple[Any, list[Action]]]
    future: asyncio.Future[Any]


_Item = EngineInput | _Finished | _LogAnalysed | _Call | None


class DiagnosticsPort(Protocol):
    """What the adapters and the API need of the diagnostics: the local runner, or (with
    several nodes) the cluster node that forwards to the leader."""

    def observe(self, event: EngineInput) -> None:
        """Queue one event or external trigger for the engine."""

    async def change_ticket(
        self, ticket_id: str, status: TicketStatus, note: str | None, by: str
    ) -> Ticket:
        """Move a ticket through its lifecycle."""

    async def authorize(
        self, station_id: str, command: StationCommand, by: str, force: bool
    ) -> OperatorDecision:
        """The engine's verdict on an operator's command."""


class Deposed(Exception):
    """The runner's guard failed: another node leads the diagnostics now."""


class DiagnosticsRunner:
    """Drives one engine for this node: events in, commands out, state persisted."""

    def __init__(
        self,
        engine_factory: Callable[[EngineState | None], DiagnosticsEngine],
        store: Store,
        execute: Execute,
        node: str,
        clock: Callable[[], datetime] = utc_now,
        bus: EventBus | None = None,
        state_key: str | None = None,
        guard: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        self._factory = engine_factory
        self.store = store
        self._execute = execute
        self.node = node
        self.state_key = state_key or node
        """Row of ``engine_state`` this runner owns (the node, or ``cluster`` when several
        nodes take turns leading)."""
        self._guard = guard
        self._clock = clock
        self.bus = bus if bus is not None else EventBus()
        self.engine: DiagnosticsEngine | None = None
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._info_wanted: set[str] = set()
        self._info_task: asyncio.Task[None] | None = None
        self._pump: asyncio.Task[None] | None = None
        self._ticker: asyncio.Task[None] | None = None
        #: Runs that ended, newest last (bounded): what was fixed, cleared or ticketed.
        self.finished_runs: deque[RunView] = deque(maxlen=FINISHED_RUNS_KEPT)

    async def start(self) -> None:
        """Restore the engine from its saved state and start the pump and the ticker."""
        saved = await self.store.load_engine_state(self.state_key)
        state = assemble_state(saved.core, saved.shards) if saved else None
        self.engine = self._factory(state)
        await self._preload_info(self.engine)
        if state is not None:
            log.info("diagnostics_resumed", runs=len(self.engine.runs()))
            if self._guard is None:
                # One node (no cluster): its restart dropped every connection, and the
                # stations are reconnecting now. The engine hears so first (the first input
                # of the pump), so that its runs wait for them.
                future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
                self._queue.put_nowait(_Call(_connections_lost, future))
        self._pump = asyncio.create_task(self._run(), name="diagnostics-pump")
        self._ticker = asyncio.create_task(self._tick(), name="diagnostics-tick")

    async def stop(self) -> None:
        """Stop feeding the engine; commands in flight are abandoned (resumed on restart)."""
        await cancel_and_wait(self._ticker, self._pump, self._info_task, *self._tasks)

    def observe(self, event: EngineInput) -> None:
        """Queue one event (station event after it is stored, or an external trigger)."""
        self._queue.put_nowait(event)

    async def call(
        self, fn: Callable[[DiagnosticsEngine, datetime], tuple[Any, list[Action]]]
    ) -> Any:
        """Run ``fn(engine, now)`` in the pump, after the inputs queued before it; perform
        the actions it returns (state saved first) and return its value (or raise its error)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Call(fn, future))
        return await future

    async def change_ticket(
        self, ticket_id: str, status: TicketStatus, note: str | None, by: str
    ) -> Ticket:
        """Move a ticket through its lifecycle (acknowledge, dispatch, resolve, close, reopen).

        Raises :class:`~diagnostics.exceptions.UnknownTicket` (closed or never open) and
        :class:`~diagnostics.exceptions.InvalidTransition`.
        """
        def change(engine: DiagnosticsEngine, now: datetime) -> tuple[Any, list[Action]]:
            actions = engine.ticket_status_changed(ticket_id, status, now, note, by)
            updated = next(
                a.ticket for a in actions
                if isinstance(a, UpdateTicket) and a.ticket_id == ticket_id
            )
            return updated, actions

        ticket: Ticket = await self.call(change)
        return ticket

    async def authorize(
        self, station_id: str, command: StationCommand, by: str, force: bool
    ) -> OperatorDecision:
        """The engine's verdict on an operator's command (see ``operator_command``)."""
        def decide(engine: DiagnosticsEngine, now: datetime) -> tuple[Any, list[Action]]:
            return engine.operator_command(station_id, command, now, by=by, force=force), []

        decision: OperatorDecision = await self.call(decide)
        return decision

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._feed(batch)
            except Exception as exc:
                stop_if_cancelled(exc)
                log.exception("diagnostics_input_failed", items=len(batch))

    async def _feed(self, batch: list[_Item]) -> None:
        """Feed every queued input to the engine, save its state once, then act.

        One write-ahead per batch rather than per input: a reconnect storm of N chargers is
        then a few transactions, not 2N. Each holds the core and the shards of the stations
        the batch touched (``DiagnosticsEngine.state_delta``); it is written before any of
        the batch's actions is performed.
        """
        engine = self.engine
        assert engine is not None
        now = self._clock()
        actions: list[Action] = []
        answers: list[tuple[asyncio.Future[Any], Any]] = []
        for item in batch:
            try:
                if isinstance(item, _Call):
                    try:
                        value, more = item.fn(engine, now)
                    except Exception as exc:
                        if not item.future.done():
                            item.future.set_exception(exc)
                        continue
                    answers.append((item.future, value))
                elif item is None:
                    more = engine.tick(now)
                elif isinstance(item, _Finished):
                    more = engine.command_finished(item.command_id, item.outcome, now)
                elif isinstance(item, _LogAnalysed):
                    upload = item.upload
                    more = engine.log_analysed(upload.station_id, upload.request_id,
                                               item.findings, str(upload.path), now)
                else:
                    if isinstance(item, StationConnected) and engine.station_info(
                        item.station_id
                    ) is None:
                        self._want_info(item.station_id)
                    more = engine.observe(item, now)
            except Exception:
                log.exception("diagnostics_input_failed", item=type(item).__name__)
                continue
            actions.extend(more)
        try:
            if actions:
                await self._write_ahead(engine)
                for action in actions:
                    await self._perform(action)
        except BaseException as exc:
            for future, _ in answers:
                if not future.done():
                    future.set_exception(exc if isinstance(exc, Exception)
                                         else RuntimeError("diagnostics pump stopped"))
            raise
        for future, value in answers:
            if not future.done():
                future.set_result(value)

    async def _write_ahead(self, engine: DiagnosticsEngine) -> None:
        """Save what changed in the state before acting (the core and the stations the
        batch touched); a deposed cluster leader must not act at all."""
        delta = engine.state_delta()

        async def save() -> None:
            if self._guard is not None and not await self._guard():
                raise Deposed("this node no longer holds the diagnostics lease")
            await self.store.save_engine_state(self.state_key, delta)

        try:
            await self._persist("engine_state", save)
        except BaseException:
            engine.delta_not_saved(delta)
            raise

    async def _persist(self, what: str, write: Callable[[], Awaitable[None]]) -> None:
        """Run ``write`` until it succeeds (the database may be away for a while).

        The engine has already moved on when its actions are performed: a state, run or
        ticket write that was dropped would lose the commands decided with it (the engine
        waits for outcomes that never come) or the ticket. So the pump waits for the
        database instead; inputs queue up meanwhile and are fed once it is back.
        """
        pause = PERSIST_RETRY_INITIAL
        failures = 0
        while True:
            try:
                await write()
            except Deposed:
                raise
            except Exception as exc:
                stop_if_cancelled(exc)
                failures += 1
                if failures == 1:
                    log.exception("diagnostics_write_failed", write=what, retry_in=pause)
                else:
                    log.warning("diagnostics_write_failed", write=what, retry_in=pause,
                                attempts=failures, error=repr(exc)[:200])
                await asyncio.sleep(pause)
                pause = min(pause * 2, PERSIST_RETRY_MAX)
            else:
                if failures:
                    log.info("diagnostics_write_recovered", write=what, attempts=failures + 1)
                return

    def _want_info(self, station_id: str) -> None:
        """Fetch the station's site, owner and location in the background (in bulk: a
        reconnect storm costs one query per round, and never stalls the pump)."""
        self._info_wanted.add(station_id)
        if self._info_task is None or self._info_task.done():
            self._info_task = asyncio.create_task(self._fetch_info())

    async def _fetch_info(self) -> None:
        while self._info_wanted:
            wanted, self._info_wanted = self._info_wanted, set()
            try:
                stations = await self.store.stations_by_id(sorted(wanted))
            except Exception:
                log.exception("station_info_failed", stations=len(wanted))
                return
            infos = [_info(s) for s in stations if s.site or s.owner or s.location]
            if infos:
                await self.call(functools.partial(_set_infos, infos=infos))

    async def _preload_info(self, engine: DiagnosticsEngine) -> None:
        """Every registered station's details, once at start (one query)."""
        for station in await self.store.list_stations():
            if station.site or station.owner or station.location:
                engine.set_station_info(_info(station))

    async def _perform(self, action: Action) -> None:
        match action:
            case SendCommand(command_id=command_id, station_id=station_id, command=command):
                log.info("diagnostics_command", charger_id=station_id, command_id=command_id,
                         command=type(command).__name__)
                self._spawn(self._send(command_id, station_id, command))
            case OpenTicket(ticket=ticket) | UpdateTicket(ticket=ticket) | ResolveTicket(
                ticket=ticket
            ):
                log.info("ticket_" + type(action).__name__.removesuffix("Ticket").lower(),
                         charger_id=ticket.station_id, ticket_id=ticket.ticket_id,
                         priority=str(ticket.priority), status=str(ticket.status))
                await self._save_ticket(ticket)
                kind = {OpenTicket: "opened", ResolveTicket: "resolved"}.get(
                    type(action), "updated")
                note = action.note if isinstance(action, UpdateTicket) else None
                self.bus.publish(ticket_notice(kind, ticket, note))
            case RunChanged(run=run):
                if run.outcome is not None:
                    self.finished_runs.append(run)
                await self._save_run(run)
                self.bus.publish(run_notice(run))
                log.info("diagnostics_run", charger_id=run.station_id, run_id=run.run_id,
                         phase=str(run.phase), step=run.current_step, outcome=run.outcome)

    async def _send(self, command_id: str, station_id: str, command: StationCommand) -> None:
        outcome = await self._execute(station_id, command)
        self._queue.put_nowait(_Finished(command_id, outcome))
        run_id = command_id.rsplit(":", 2)[0]
        self.bus.publish(command_notice(station_id, command, outcome, source="engine",
                                        run_id=run_id))

    async def _save_run(self, run: RunView) -> None:
        await self._persist("run", functools.partial(
            self.store.save_run,
            run_id=run.run_id, station_id=run.station_id, connector=run.connector,
            fault_class=run.fault_class, detection=run.detection, phase=str(run.phase),
            current_step=run.current_step, outcome=run.outcome, ticket_id=run.ticket_id,
            node=self.node, started_at=run.started_at, updated_at=run.updated_at,
            data=encode(RunView, run),
        ))

    async def _save_ticket(self, ticket: Ticket) -> None:
        await self._persist("ticket", functools.partial(
            self.store.save_ticket,
            ticket_id=ticket.ticket_id, station_id=ticket.station_id,
            connector=ticket.connector, fault_class=ticket.fault_class,
            status=str(ticket.status), priority=str(ticket.priority),
            opened_at=ticket.opened_at, updated_at=ticket.updated_at,
            data=encode(Ticket, ticket),
        ))

    def log_received(self, upload: UploadedLog, findings: list[Any]) -> None:
        """An upload was stored and analysed (by :class:`csms.logindex.LogIndexer`): tell
        the engine, if it runs here (it asked for the log)."""
        if self._pump is not None and not self._pump.done():
            self._queue.put_nowait(_LogAnalysed(upload, findings))

    async def _tick(self) -> None:
        while True:
            engine = self.engine
            delay = MAX_TICK
            deadline = engine.next_deadline() if engine is not None else None
            if deadline is not None:
                delay = min(MAX_TICK, max(0.0, (deadline - self._clock()).total_seconds()))
            await asyncio.sleep(delay)
            self._queue.put_nowait(None)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _info(station: Any) -> StationInfo:
    return StationInfo(station_id=station.id, site=station.site, owner=station.owner,
                       location=station.location)


def _connections_lost(engine: DiagnosticsEngine, now: datetime) -> tuple[None, list[Action]]:
    return None, engine.connections_lost(now)


def _set_infos(
    engine: DiagnosticsEngine, now: datetime, *, infos: list[StationInfo]
) -> tuple[None, list[Action]]:
    for info in infos:
        engine.set_station_info(info)
    return None, []


class RecordingBackend:
    """The adapters' backend: store the event, then hand it to the diagnostics runner."""

    def __init__(
        self, store: Store, runner: DiagnosticsPort | None, bus: EventBus | None = None
    ) -> None:
        self.store = store
        self.runner = runner
        self.bus = bus if bus is not None else EventBus()

    async def record(self, *events: DomainEvent) -> None:
        """Store first, the events of one message together (the station's answer waits for
        it), then feed the engine and tell the subscribers (status, faults, connections, log
        progress)."""
        await self.store.record(*events)
        for event in events:
            if self.runner is not None:
                self.runner.observe(event)
            if len(self.bus):
                notice = station_notice(event)
                if notice is not None:
                    self.bus.publish(notice)

    async def begin_local_transaction(self, **fields: Any) -> int:
        """OCPP 1.6 transaction ids come from the database."""
        return await self.store.begin_local_transaction(**fields)
