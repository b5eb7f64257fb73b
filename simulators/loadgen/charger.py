"""One load-generator charger: a few hundred bytes of state, no task of its own.

It sends one CALL at a time (OCPP-J 1.6 §4.1.1, 2.0.1 Part 4 §4.1.1: a CALL waits for the
answer of the previous one); later CALLs wait in a short queue with the time they were meant
to go out, which is where their latency is measured from. Frames are built from templates
only when sent. After the opening handshake: BootNotification; once Accepted a
StatusNotification per connector (1.6 connectors, 2.0.1 EVSEs with one connector each), a
session left open by a lost connection is ended, then the traffic of the fleet's mode.
"""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING, Any

import orjson

from simulators.loadgen import frames as f
from simulators.loadgen import kinds as k
from simulators.loadgen.answers import reply16, reply201
from simulators.loadgen.wire import Link

if TYPE_CHECKING:
    from simulators.loadgen.fleet import LoadFleet

# Charger states.
IDLE = 0
WAITING = 1
CONNECTING = 2
BOOTING = 3
BOOTED = 4

#: Energy added to the meter register per meter value (Wh): a session of a few samples stays
#: well above the "failed session" threshold of the diagnostics (50 Wh).
ENERGY_STEP = 250
POWER_W = 11000
STOP_LOCAL = 0
STOP_REBOOT = 1
_STOP16 = ("Local", "Reboot")
_STOP201 = (("StopAuthorized", "Local"), ("AbnormalCondition", "Reboot"))


class Charger:
    """State and behaviour of one simulated charger (see the module doc)."""

    __slots__ = (
        "boot_reason", "energy", "ever_booted", "failures", "fleet", "id", "link", "number",
        "p_kind", "p_measured", "p_sent", "p_t0", "p_uid", "queue", "rebooting", "reserved",
        "samples", "seq", "sessions", "state", "step", "t_hb", "t_misc", "t_request",
        "t_session", "t_status", "tx", "tx_conn", "v201",
    )

    def __init__(self, fleet: LoadFleet, number: int, station_id: str, v201: bool) -> None:
        self.fleet = fleet
        self.number = number
        self.id = station_id
        self.v201 = v201
        self.link: Link | None = None
        self.state = IDLE
        self.t_request = 0.0
        self.boot_reason = "PowerUp"
        self.ever_booted = False
        self.rebooting = False
        self.failures = 0
        self.p_uid: str | None = None
        self.p_kind = 0
        self.p_t0 = 0.0
        self.p_measured = False
        """The CALL in flight counts in the latencies (decided once, when it was sent)."""
        self.p_sent = 0.0
        self.queue: list[tuple[int, int, float]] | None = None
        self.tx: int | str | None = None
        self.tx_conn = 0
        self.seq = 0
        self.energy = 0
        self.samples = 0
        self.sessions = 0
        self.reserved = 0
        self.step = 0
        self.t_hb: asyncio.TimerHandle | None = None
        self.t_status: asyncio.TimerHandle | None = None
        self.t_session: asyncio.TimerHandle | None = None
        self.t_misc: asyncio.TimerHandle | None = None

    @property
    def subprotocol(self) -> str:
        """The websocket subprotocol offered."""
        return "ocpp2.0.1" if self.v201 else "ocpp1.6"

    @property
    def booted(self) -> bool:
        """BootNotification accepted on the current connection."""
        return self.state == BOOTED

    # ---------------------------------------------------------------- connection

    def on_open(self, link: Link) -> None:
        """HTTP 101: send BootNotification."""
        stats = self.fleet.stats
        stats.connected += 1
        if self.ever_booted or self.failures:
            stats.reconnects += 1
        self.link = link
        self.state = BOOTING
        self.call(k.BOOT)

    def on_lost(self, link: Link) -> None:
        """The connection is gone: forget what was in flight, reconnect unless stopping."""
        if link is not self.link:
            return
        fleet, stats = self.fleet, self.fleet.stats
        self.link = None
        stats.connected -= 1
        stats.disconnects += 1
        if self.state == BOOTED:
            stats.booted -= 1
        self.state = IDLE
        if self.p_uid is not None:
            stats.lost += 1
            self.p_uid = None
        if self.queue:
            stats.unsent += len(self.queue)
        self.queue = None
        self.cancel_timers()
        if not fleet.stopping and not fleet.dropping and fleet.config.reconnect:
            self.retry(0.1 if self.rebooting else None)
        self.rebooting = False

    def on_ping(self) -> None:
        """A websocket ping from the server (already answered)."""
        self.fleet.stats.pings += 1

    def retry(self, delay: float | None = None) -> None:
        """Connect again after ``delay`` (default: backoff with jitter)."""
        fleet = self.fleet
        if fleet.stopping:
            return
        if delay is None:
            config = fleet.config
            delay = min(config.reconnect_delay * 2 ** min(self.failures, 8), config.reconnect_max)
            delay *= 0.5 + random.random()
        self.failures += 1
        if self.t_misc is not None:
            self.t_misc.cancel()
        self.t_misc = fleet.loop.call_later(delay, fleet.queue_connect, self)

    def cancel_timers(self) -> None:
        """Stop every timer of this charger."""
        for handle in (self.t_hb, self.t_status, self.t_session, self.t_misc):
            if handle is not None:
                handle.cancel()
        self.t_hb = self.t_status = self.t_session = self.t_misc = None

    # ---------------------------------------------------------------- sending

    def call(self, kind: int, arg: int = 0, t0: float | None = None) -> None:
        """Send a CALL now, or queue it behind the one in flight (``t0``: when it was due)."""
        if self.link is None or (self.state != BOOTED and kind != k.BOOT):
            self.fleet.stats.dropped += 1
            return
        now = self.fleet.loop.time()
        if self.p_uid is None:
            self._transmit(kind, arg, now if t0 is None else t0, now)
            return
        queue = self.queue
        if queue is None:
            self.queue = queue = []
        if len(queue) >= self.fleet.config.max_backlog:
            self.fleet.stats.dropped += 1
            return
        queue.append((kind, arg, now if t0 is None else t0))

    def _next(self) -> None:
        queue = self.queue
        if queue and self.link is not None:
            kind, arg, t0 = queue.pop(0)
            self._transmit(kind, arg, t0, self.fleet.loop.time())

    def _transmit(self, kind: int, arg: int, t0: float, now: float) -> None:
        fleet = self.fleet
        uid = str(fleet.next_uid())
        kind, text = self._build(kind, arg, uid)
        assert self.link is not None
        self.link.send(text)
        self.p_uid, self.p_kind, self.p_t0, self.p_sent = uid, kind, t0, now
        stats = fleet.stats
        stats.calls_sent += 1
        stats.sent_by_kind[kind] += 1
        # Decided here once: a CALL sent just before the rate phase began is not measured,
        # even if the loop's clock (uvloop: milliseconds) gives it the start time itself.
        self.p_measured = t0 >= fleet.measure_from
        if self.p_measured:
            fleet.measured_calls += 1

    def _build(self, kind: int, arg: int, uid: str) -> tuple[int, str]:
        """The frame of a CALL (a session message without a session becomes a Heartbeat)."""
        ts = f.stamp()
        v201 = self.v201
        if kind == k.HEARTBEAT:
            return kind, f.HEARTBEAT % uid
        if kind == k.STATUS:
            conn, status = arg >> 3, arg & 7
            if v201:
                return kind, f.STATUS201 % (uid, ts, k.STATUS201[status], conn)
            return kind, f.STATUS16 % (uid, conn, k.STATUS16[status], ts)
        if kind == k.METER:
            if self.tx is None:
                return k.HEARTBEAT, f.HEARTBEAT % uid
            self.energy += ENERGY_STEP
            ctx = "Trigger" if arg else "Sample.Periodic"
            if v201:
                self.seq += 1
                return kind, f.TX_UPDATED201 % (
                    uid, ts, "Trigger" if arg else "MeterValuePeriodic", self.seq, self.tx,
                    self.tx_conn, ts, self.energy, ctx, POWER_W, ctx)
            return kind, f.METER16 % (uid, self.tx_conn, self.tx, ts, self.energy, ctx,
                                      POWER_W, ctx)
        if kind == k.TX_START:
            self.sessions += 1
            if v201:
                self.tx = f"{self.fleet.run_token}-{self.sessions}"
                self.seq = 0
                return kind, f.TX_STARTED201 % (uid, ts, self.tx, arg, ts, self.energy)
            self.tx = None  # assigned by the CSMS in the answer
            return kind, f.START16 % (uid, arg, self.energy, ts)
        if kind == k.TX_STOP:
            tx, conn = self.tx, self.tx_conn
            self.tx, self.tx_conn = None, 0
            if tx is None:
                return k.HEARTBEAT, f.HEARTBEAT % uid
            self.energy += ENERGY_STEP
            if v201:
                self.seq += 1
                trigger, reason = _STOP201[arg]
                return kind, f.TX_ENDED201 % (uid, ts, trigger, self.seq, tx, reason, conn, ts,
                                              self.energy)
            return kind, f.STOP16 % (uid, self.energy, ts, tx, _STOP16[arg])
        if kind == k.BOOT:
            if v201:
                return kind, f.BOOT201 % (uid, self.boot_reason)
            return kind, f.BOOT16 % uid
        if kind == k.METER_PLAIN:
            if v201:
                return kind, f.METER201_PLAIN % (uid, arg, ts, self.energy)
            return kind, f.METER16_PLAIN % (uid, arg, ts, self.energy)
        if kind == k.LOG_STATUS:
            return kind, (f.LOG_STATUS201 if v201 else f.DIAGNOSTICS_STATUS16) % uid
        return k.FW_STATUS, f.FIRMWARE_STATUS % uid

    # ---------------------------------------------------------------- receiving

    def on_text(self, data: bytes) -> None:
        """A frame from the CSMS: the answer to our CALL, or a CALL of its own."""
        stats = self.fleet.stats
        try:
            msg = orjson.loads(data)
            kind_of = msg[0]
            uid = msg[1]
        except (orjson.JSONDecodeError, TypeError, IndexError, KeyError):
            stats.bad_frames += 1
            return
        if self.fleet.config.echo and uid == self.p_uid:
            kind_of, msg = 3, [3, uid, {}]
        if kind_of == 3 or kind_of == 4:
            if uid != self.p_uid or self.p_uid is None:
                stats.late += 1
                return
            now = self.fleet.loop.time()
            kind = self.p_kind
            if self.p_measured:
                latency = now - self.p_t0
                stats.latency.record(latency)
                stats.latency_by_kind[kind].record(latency)
                self.fleet.window.record(latency)
                stats.service.record(now - self.p_sent)
            self.p_uid = None
            if kind_of == 3:
                stats.results += 1
                payload = msg[2] if len(msg) > 2 and isinstance(msg[2], dict) else {}
                self._on_result(kind, payload, now)
            else:
                stats.call_errors += 1
                code = str(msg[2]) if len(msg) > 2 else "?"
                by_code = stats.call_errors_by_code
                by_code[code] = by_code.get(code, 0) + 1
                self._on_error(kind)
            if self.p_uid is None:
                self._next()
        elif kind_of == 2 and len(msg) >= 4:
            self._csms_call(msg)
        else:
            stats.bad_frames += 1

    def timed_out(self) -> None:
        """No answer within the call timeout: give up on it and go on."""
        kind = self.p_kind
        self.fleet.stats.timeouts += 1
        self.p_uid = None
        self._on_error(kind)
        if self.p_uid is None:
            self._next()

    def _on_result(self, kind: int, payload: dict[str, Any], now: float) -> None:
        if kind == k.BOOT:
            status = "Accepted" if self.fleet.config.echo else payload.get("status")
            interval = payload.get("interval")
            interval = interval if isinstance(interval, int) and interval > 0 else 0
            if status == "Accepted":
                self._booted(now, interval)
            else:
                self.fleet.stats.boots_not_accepted += 1
                self._boot_later(interval or 10)
        elif kind == k.TX_START and not self.v201:
            tx = payload.get("transactionId")
            if self.fleet.config.echo:
                tx = self.sessions
            if isinstance(tx, int) and not isinstance(tx, bool):
                self.tx = tx
            else:
                self.tx_conn = 0

    def _on_error(self, kind: int) -> None:
        if kind == k.BOOT and self.state == BOOTING:
            self._boot_later(10)
        elif kind == k.TX_START:
            self.tx = None
            self.tx_conn = 0

    def _boot_later(self, seconds: float) -> None:
        """BootNotification again after ``seconds`` (B02/B03, 1.6 §4.2)."""
        if self.state != BOOTING:
            return
        if self.t_misc is not None:
            self.t_misc.cancel()
        self.t_misc = self.fleet.loop.call_later(min(max(seconds, 1), 300), self.call, k.BOOT)

    def _booted(self, now: float, interval: int) -> None:
        fleet, stats = self.fleet, self.fleet.stats
        if self.state == BOOTED:  # a triggered BootNotification (1.6)
            return
        self.state = BOOTED
        self.failures = 0
        stats.booted += 1
        stats.boots += 1
        stats.boot.record(now - self.t_request)
        if fleet.storm_waiting and self in fleet.storm_waiting:
            fleet.storm_booted(self, now)
        for conn in range(1, fleet.config.connectors + 1):
            self.call(k.STATUS, conn << 3 | self.connector_state(conn))
        if self.tx_conn:
            self.call(k.TX_STOP, STOP_REBOOT)
        if not self.ever_booted:
            self.ever_booted = True
            stats.ever_booted += 1
            fleet.first_boot()
        fleet.start_traffic(self, interval)

    def connector_state(self, conn: int) -> int:
        """The status code (:mod:`~simulators.loadgen.kinds`) of a connector."""
        if conn == self.tx_conn:
            return k.BUSY
        return k.RESERVED if self.reserved >> conn & 1 else k.AVAILABLE

    # ---------------------------------------------------------------- CSMS calls

    def _csms_call(self, msg: list[Any]) -> None:
        fleet, stats = self.fleet, self.fleet.stats
        action = str(msg[2])
        payload = msg[3] if isinstance(msg[3], dict) else {}
        stats.csms_calls += 1
        by_action = stats.csms_calls_by_action
        by_action[action] = by_action.get(action, 0) + 1
        connectors = fleet.config.connectors
        if self.v201:
            reply = reply201(action, payload, connectors=connectors,
                             booted=self.state == BOOTED, in_session=self.tx is not None)
        else:
            reply = reply16(action, payload, connectors=connectors)
        uid = orjson.dumps(msg[1]).decode()
        link = self.link
        if link is None:
            return
        if reply.error is not None:
            stats.csms_not_implemented += 1
            link.send(f.error(uid, reply.error, f"{action} is not supported by this charger"))
        else:
            assert reply.payload is not None
            link.send(f.result(uid, reply.payload))
        if reply.trigger is not None:
            kind, conn = reply.trigger
            if kind == k.STATUS:
                for c in ([conn] if conn else range(1, connectors + 1)):
                    self.call(k.STATUS, c << 3 | self.connector_state(c))
            elif kind == k.BOOT:
                self.boot_reason = "Triggered"
                self.call(k.BOOT)
            else:
                self.call(kind, conn if kind != k.METER else 1)
        if reply.reset:
            stats.resets += 1
            if self.t_misc is not None:
                self.t_misc.cancel()
            self.t_misc = fleet.loop.call_later(fleet.config.reset_delay, self.reboot)

    def reboot(self) -> None:
        """Drop the connection, then connect and boot again (after a Reset)."""
        self.t_misc = None
        self.rebooting = True
        self.boot_reason = "RemoteReset"
        if self.link is not None:
            self.link.close(1000, "reset")

    # ---------------------------------------------------------------- traffic

    def heartbeat_tick(self, interval: float) -> None:
        """Timer mode: Heartbeat, then again after ``interval``."""
        self.call(k.HEARTBEAT)
        self.t_hb = self.fleet.loop.call_later(interval, self.heartbeat_tick, interval)

    def status_tick(self, interval: float) -> None:
        """Timer mode: a status change, then again after ``interval``."""
        self.status_change()
        self.t_status = self.fleet.loop.call_later(interval, self.status_tick, interval)

    def status_change(self, t0: float | None = None) -> None:
        """The last connector goes Available ↔ Reserved (its status again if in a session)."""
        conn = self.fleet.config.connectors
        if conn != self.tx_conn:
            self.reserved ^= 1 << conn
        self.call(k.STATUS, conn << 3 | self.connector_state(conn), t0)

    def session_tick(self) -> None:
        """Timer mode: start a session, send its meter values, stop it, pause, again."""
        config, loop = self.fleet.config, self.fleet.loop
        if not self.tx_conn:
            self.session_start()
            self.call(k.STATUS, 1 << 3 | k.BUSY)
            self.samples = config.meter_samples
            self.t_session = loop.call_later(config.meter_interval, self.session_tick)
        elif self.samples > 0:
            self.samples -= 1
            self.call(k.METER)
            self.t_session = loop.call_later(config.meter_interval, self.session_tick)
        else:
            self.call(k.TX_STOP, STOP_LOCAL)
            self.call(k.STATUS, 1 << 3 | k.AVAILABLE)
            pause = config.session_interval * (0.5 + random.random())
            self.t_session = loop.call_later(max(pause, 0.01), self.session_tick)

    def session_start(self, t0: float | None = None) -> None:
        """StartTransaction / TransactionEvent Started on connector 1."""
        self.reserved &= ~0b10
        self.tx_conn = 1
        self.call(k.TX_START, 1, t0)

    def rate_step(self, step: int, t0: float) -> None:
        """Fixed-rate mode: send the CALL of cycle step ``step`` (due at ``t0``)."""
        if step == k.STEP_HEARTBEAT:
            self.call(k.HEARTBEAT, 0, t0)
        elif step == k.STEP_STATUS_CHANGE:
            self.status_change(t0)
        elif step == k.STEP_SESSION_START:
            if self.tx_conn:
                self.call(k.METER, 0, t0)
            else:
                self.session_start(t0)
        elif step == k.STEP_SESSION_STATUS:
            if self.tx_conn:
                self.call(k.STATUS, self.tx_conn << 3 | k.BUSY, t0)
            else:
                self.call(k.HEARTBEAT, 0, t0)
        elif step == k.STEP_METER:
            self.call(k.METER, 0, t0)
        elif step == k.STEP_SESSION_STOP:
            self.call(k.TX_STOP if self.tx_conn else k.HEARTBEAT, STOP_LOCAL, t0)
        else:  # after the session stop: connector 1 is free again
            self.call(k.STATUS, 1 << 3 | k.AVAILABLE, t0)
