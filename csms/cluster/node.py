"""One node of several: leadership of the diagnostics, forwarding, command routing.

- Every node says it is alive in ``cluster_nodes`` and tries to take the ``diagnostics`` lease
  every ``renew_seconds``. The holder runs the diagnostics engine (state row ``cluster``,
  saved before every action, and only while the lease is still held: a deposed leader never
  acts). When the holder dies, the lease expires and another node takes over from the saved
  state: no command is sent twice, no second ticket is opened.
- Events recorded on a node that does not lead go to the leader over the broker
  (:class:`~csms.cluster.link.EngineInbox`); after a takeover the new leader replays the
  current connection and connector state from the database, in case an event was lost with
  the old leader.
- Commands for a charger held by another node (from the engine or the API) are sent to that
  node, which sends them and returns the outcome.
- Notices are shared, so every node's live stream and dashboard show the whole fleet.
- The leader marks the chargers of a dead node (silent for ``node_timeout``) disconnected.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson

from csms.bus import Notice, Topic
from csms.cluster.link import ClusterLink, EngineInbox, RemoteError
from csms.logs import get_logger
from csms.tasks import cancel_and_wait, stop_if_cancelled
from diagnostics import InvalidTransition, OperatorDecision, Ticket, UnknownTicket
from diagnostics.commands import CommandOutcome, OutcomeStatus, StationCommand
from diagnostics.events import (
    ConnectorStatus,
    ConnectorStatusChanged,
    EngineInput,
    StationConnected,
    StationDisconnected,
)
from diagnostics.serde import decode, dumps, encode
from diagnostics.tickets import TicketStatus

if TYPE_CHECKING:
    from csms.app import CentralSystem
    from csms.automation import DiagnosticsRunner

log = get_logger("csms.cluster")

LEASE = "diagnostics"
STATE_KEY = "cluster"


def _now() -> datetime:
    return datetime.now(UTC)


class ClusterNode:
    """The cluster side of one central system (a :class:`~csms.components.Component`)."""

    def __init__(self, central: CentralSystem, runner: DiagnosticsRunner | None) -> None:
        self.central = central
        self.settings = central.settings.cluster
        self.node = central.settings.node_id
        self.runner = runner
        self.link = ClusterLink(central.settings.mqtt, self.node)
        self.inbox = EngineInbox(central.settings.mqtt, self._from_inbox)
        self.leader = False
        self._loop_task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self.takeovers = 0

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Connect to the other nodes and start competing for the lease."""
        self.link.handle("execute", self._on_execute)
        self.link.handle("authorize", self._on_authorize)
        self.link.handle("change_ticket", self._on_change_ticket)
        self.link.on_notice = self._on_remote_notice
        await self.link.start()
        self._unsubscribe = self.central.bus.subscribe(self._share)
        await self._beat()
        self._loop_task = asyncio.create_task(self._loop(), name="cluster-node")

    async def stop(self) -> None:
        """Hand the lease over (another node takes it at once) and disconnect."""
        await cancel_and_wait(self._loop_task)
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self.leader:
            await self._deposed()
            with contextlib.suppress(Exception):
                await self.central.store.release_lease(LEASE, self.node)
        await self.link.stop()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.renew_seconds)
            try:
                await self._beat()
            except Exception as exc:
                stop_if_cancelled(exc)
                log.exception("cluster_beat_failed", node=self.node)
                if self.leader:  # cannot prove we still hold the lease: stop acting
                    await self._deposed()

    async def _beat(self) -> None:
        now = _now()
        store = self.central.store
        await store.node_alive(self.node, now, self._info())
        if self.runner is None:
            return
        held = await store.acquire_lease(LEASE, self.node, now,
                                         timedelta(seconds=self.settings.lease_seconds))
        if held and not self.leader:
            await self._elected()
        elif not held and self.leader:
            await self._deposed()
        if self.leader:
            await self._reap_dead_nodes(now)

    def _info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"leader": self.leader}
        with contextlib.suppress(RuntimeError):  # not listening yet
            info |= {"ocpp_port": self.central.ocpp.port, "http_port": self.central.http.port}
        return info

    async def _elected(self) -> None:
        assert self.runner is not None
        log.info("cluster_leader_elected", node=self.node)
        self.takeovers += 1
        await self.runner.start()
        await self.inbox.start()
        # Leader from here on: events recorded meanwhile went through the broker and reach
        # the engine through the inbox.
        self.leader = True
        await self._resync()

    async def _deposed(self) -> None:
        log.warning("cluster_leader_deposed", node=self.node)
        self.leader = False
        await self.inbox.stop()
        if self.runner is not None:
            await self.runner.stop()

    async def guard(self) -> bool:
        """The runner's fence: act only while this node holds the lease."""
        return self.leader and await self.central.store.holds_lease(LEASE, self.node, _now())

    async def _reap_dead_nodes(self, now: datetime) -> None:
        store = self.central.store
        for node in await store.dead_nodes(now, timedelta(seconds=self.settings.node_timeout)):
            if node == self.node:
                continue
            ids = await store.disconnect_node(node, f"node {node} stopped answering")
            log.warning("cluster_node_dead", dead=node, stations=len(ids))
            for station_id in ids:
                self.observe(StationDisconnected(station_id=station_id, at=now,
                                                 reason=f"node {node} is gone"))

    async def _resync(self) -> None:
        """Replay connections and connector states (an event may have died with the old
        leader); the engine ignores what it already knows."""
        assert self.runner is not None
        store = self.central.store
        now = _now()
        stations = await store.list_stations()
        connectors = await store.connectors_of([s.id for s in stations])
        for station in stations:
            if station.connected:
                self.runner.observe(StationConnected(station_id=station.id, at=now,
                                                     protocol=station.protocol or "1.6"))
            for connector in connectors[station.id]:
                self.runner.observe(ConnectorStatusChanged(
                    station_id=station.id, at=now,
                    connector_id=connector.connector_id,
                    evse_id=connector.evse_id if station.protocol == "2.0.1" else None,
                    status=ConnectorStatus.parse(connector.raw_status),
                    raw_status=connector.raw_status, error_code=connector.error_code,
                    vendor_id=connector.vendor_id,
                    vendor_error_code=connector.vendor_error_code, info=connector.info,
                ))
        log.info("cluster_resynced", stations=len(stations))

    # ------------------------------------------------------------------ diagnostics facade

    def observe(self, event: EngineInput) -> None:
        """Feed the engine: directly on the leader, over the broker elsewhere."""
        if self.leader and self.runner is not None:
            self.runner.observe(event)
        else:
            # Encoded once by orjson; the batch embeds the bytes as they are.
            self.link.send_engine_input(orjson.Fragment(dumps(EngineInput, event)))

    async def change_ticket(
        self, ticket_id: str, status: TicketStatus, note: str | None, by: str
    ) -> Ticket:
        """A ticket transition, on the leader's engine."""
        if self.leader and self.runner is not None:
            return await self.runner.change_ticket(ticket_id, status, note, by)
        body = await self._ask_leader("change_ticket", {
            "ticket_id": ticket_id, "status": status.value, "note": note, "by": by})
        return Ticket.from_dict(body)

    async def authorize(
        self, station_id: str, command: StationCommand, by: str, force: bool
    ) -> OperatorDecision:
        """The leader engine's verdict on an operator's command."""
        if self.leader and self.runner is not None:
            return await self.runner.authorize(station_id, command, by, force)
        body = await self._ask_leader("authorize", {
            "station_id": station_id, "command": encode(StationCommand, command), "by": by,
            "force": force})
        return OperatorDecision(allowed=bool(body["allowed"]), reason=body.get("reason"))

    async def _ask_leader(self, kind: str, body: dict[str, Any]) -> Any:
        leader = await self.central.store.lease_holder(LEASE, _now())
        if leader is None:
            raise RemoteError("no diagnostics leader right now (takeover in progress)")
        try:
            return await self.link.request(leader, kind, body, self.settings.rpc_timeout)
        except RemoteError as exc:
            text = str(exc)
            if text.startswith("UnknownTicket"):
                raise UnknownTicket(body.get("ticket_id", "")) from exc
            if text.startswith("InvalidTransition"):
                raise InvalidTransition(text.partition(": ")[2]) from exc
            raise

    async def _on_change_ticket(self, sender: str, body: Any) -> Any:
        if not (self.leader and self.runner is not None):
            raise RemoteError(f"node {self.node} does not lead the diagnostics")
        ticket = await self.runner.change_ticket(
            body["ticket_id"], TicketStatus(body["status"]), body.get("note"), body["by"])
        return ticket.to_dict()

    async def _on_authorize(self, sender: str, body: Any) -> Any:
        if not (self.leader and self.runner is not None):
            raise RemoteError(f"node {self.node} does not lead the diagnostics")
        decision = await self.runner.authorize(
            body["station_id"], decode(StationCommand, body["command"]), body["by"],
            bool(body["force"]))
        return {"allowed": decision.allowed, "reason": decision.reason}

    def _from_inbox(self, data: dict[str, Any]) -> None:
        if self.runner is None:
            return
        try:
            event = decode(EngineInput, data)
        except (TypeError, KeyError, ValueError):
            log.warning("cluster_event_unreadable", data=str(data)[:200])
            return
        self.runner.observe(event)

    # ------------------------------------------------------------------ commands

    async def execute(self, station_id: str, command: StationCommand) -> CommandOutcome:
        """Send ``command`` to the station wherever it is connected."""
        registry = self.central.registry
        if station_id in registry:
            return await registry.execute(station_id, command)
        name = type(command).__name__
        node = await self.central.store.station_node(station_id)
        if node is None or node == self.node:
            return CommandOutcome(OutcomeStatus.OFFLINE, name, detail="station not connected")
        try:
            body = await self.link.request(node, "execute", {
                "station_id": station_id, "command": encode(StationCommand, command)},
                self.settings.rpc_timeout)
        except RemoteError as exc:
            return CommandOutcome(OutcomeStatus.TIMEOUT, name, detail=str(exc))
        outcome: CommandOutcome = decode(CommandOutcome, body)
        return outcome

    async def _on_execute(self, sender: str, body: Any) -> Any:
        command = decode(StationCommand, body["command"])
        outcome = await self.central.registry.execute(body["station_id"], command)
        return encode(CommandOutcome, outcome)

    # ------------------------------------------------------------------ notices

    def _share(self, notice: Notice) -> None:
        if notice.origin is None:
            self.link.publish_notice({**notice.to_dict(), "origin": self.node})

    def _on_remote_notice(self, data: dict[str, Any]) -> None:
        try:
            notice = Notice(
                topic=Topic(data["topic"]), kind=str(data["kind"]),
                station_id=data.get("station_id"), data=data.get("data") or {},
                at=datetime.fromisoformat(data["at"]), origin=str(data.get("origin") or "remote"),
            )
        except (KeyError, ValueError):
            return
        self.central.bus.publish(notice)
