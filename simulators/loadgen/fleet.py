"""Thousands of cheap chargers in one event loop (:class:`LoadFleet`).

Connecting: ``storm`` asks every charger to connect at once (``max_handshakes`` caps the
TCP connects + handshakes in flight), ``ramp`` ``ramp_rate`` chargers per second. A lost
connection is re-established with exponential backoff and jitter. A reconnect storm is never
capped: every charger reconnects at once, as after a real outage.

Traffic: with ``rate`` 0 each charger has timers (heartbeat, status changes, sessions with
meter values) started at a random phase; with ``rate`` > 0 one dispatcher hands the due CALLs
to the booted chargers in turn, open loop (it never waits for an answer), once every charger
booted or ``boot_timeout`` passed; the chargers start at different points of the message cycle,
so the mix is the same in every second. Each CALL's latency counts from the time it was due.

Everything is bounded: :meth:`LoadFleet.run` connects (until every charger booted, at most
``boot_timeout`` seconds), runs the traffic for ``duration`` seconds, drains the CALLs in
flight for at most ``drain_timeout`` seconds and closes every websocket.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import math
import random
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from simulators.loadgen import kinds
from simulators.loadgen.charger import BOOTED, CONNECTING, IDLE, WAITING, Charger
from simulators.loadgen.config import LoadConfig
from simulators.loadgen.histogram import Histogram
from simulators.loadgen.stats import Stats, rss_bytes
from simulators.loadgen.wire import LOST, Link, build_request, new_key
from simulators.tls import TlsConfigError, TlsOptions

DISPATCH_TICK = 0.001
"""Shortest sleep of the fixed-rate dispatcher (seconds): CALLs due meanwhile go together."""

ProgressCallback = Callable[[dict[str, Any]], None]


class LoadFleet:
    """A load fleet; see the module doc. Use :meth:`run`, or :meth:`start` then
    :meth:`stop` (tests), and read :attr:`stats`."""

    def __init__(self, config: LoadConfig, *, on_progress: ProgressCallback | None = None,
                 progress_interval: float = 1.0) -> None:
        self.config = config
        self.on_progress = on_progress
        self.progress_interval = progress_interval
        self.stats = Stats(config.count)
        self.stats.rate_target = config.rate
        self.window = Histogram()
        """Latencies since the last progress report."""
        self.measure_from = math.inf if config.rate > 0 else 0.0
        """CALLs due before this (loop) time are not in the latency histograms (fixed-rate
        mode: until the rate phase starts)."""
        self.measured_calls = 0
        """CALLs sent that were due from ``measure_from`` on."""
        self.chargers: list[Charger] = []
        self.by_id: dict[str, Charger] = {}
        self.stopping = False
        self.dropping = False
        """Connections are being dropped for a reconnect storm (no automatic reconnect)."""
        self.storm_waiting: set[Charger] | None = None
        """Chargers not booted again yet in a reconnect storm."""
        self._storm_start = 0.0
        self._storm_done = asyncio.Event()
        self.next_uid = itertools.count(1).__next__
        self.run_token = f"{int(time.time() * 1000) % 2**40:x}{config.seed % 256:02x}"
        parts = urlsplit(config.url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or (443 if config.tls else 80)
        self._tls = tls_contexts(config)
        self._path = parts.path or "/"
        self._addr = self._host
        self._waiting: collections.deque[Charger] = collections.deque()
        self._inflight = 0
        self._cap = config.max_handshakes
        """Handshakes in flight allowed now (0: no cap; lifted for a reconnect storm)."""
        self._connecting: set[asyncio.Task[None]] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._all_booted = asyncio.Event()
        self._stop_requested = asyncio.Event()
        self._stopped = False
        self._t_start = 0.0
        self._cpu_start = 0.0
        self._rate_start: float | None = None
        self._last: tuple[float, int] = (0.0, 0)
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the fleet runs in (set by :meth:`start`)."""
        assert self._loop is not None, "fleet not started"
        return self._loop

    def charger(self, station_id: str) -> Charger:
        """A charger by id."""
        return self.by_id[station_id]

    # ---------------------------------------------------------------- lifecycle

    async def run(self, before_storm: Callable[[], Awaitable[None]] | None = None) -> Stats:
        """Start; once every charger booted (or after ``boot_timeout``) run the traffic for
        ``duration`` seconds; with ``reconnect_storm`` then a reconnect storm (after
        ``before_storm``, which lets processes drop together); stop. :meth:`request_stop`
        ends it earlier."""
        await self.start()
        config = self.config
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(config.boot_timeout):
                    await _first(self._all_booted.wait(), self._stop_requested.wait())
            if not self._stop_requested.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(config.duration):
                        await self._stop_requested.wait()
            if config.reconnect_storm and not self._stop_requested.is_set():
                if before_storm is not None:
                    await before_storm()
                await _first(self.reconnect_storm(), self._stop_requested.wait())
        finally:
            stats = await self.stop()
        return stats

    def request_stop(self) -> None:
        """Make :meth:`run` end now (e.g. on SIGINT)."""
        self._stop_requested.set()

    async def start(self) -> None:
        """Create the chargers and begin connecting them (returns at once)."""
        config = self.config
        self._loop = loop = asyncio.get_running_loop()
        self.stats.loop = type(loop).__module__.split(".")[0]
        infos = await loop.getaddrinfo(self._host, self._port, type=socket.SOCK_STREAM)
        self._addr = str(infos[0][4][0])
        self.stats.rss_baseline = rss_bytes()[0]
        for number in range(config.first, config.first + config.count):
            station_id = config.charger_id(number)
            charger = Charger(self, number, station_id, config.is_v201(number))
            self.chargers.append(charger)
            self.by_id[station_id] = charger
        self._t_start = loop.time()
        self._cpu_start = time.process_time()
        self._last = (self._t_start, 0)
        if config.connect == "storm":
            for charger in self.chargers:
                self.queue_connect(charger)
        else:
            self._spawn(self._ramp())
        self._spawn(self._sweep())
        if config.rate > 0:
            self._spawn(self._dispatch())

    async def wait_booted(self, timeout: float) -> bool:
        """Wait until every charger booted once; False after ``timeout`` seconds."""
        try:
            async with asyncio.timeout(timeout):
                await self._all_booted.wait()
        except TimeoutError:
            return False
        return True

    async def stop(self) -> Stats:
        """Stop sending, wait for the answers in flight, close every websocket."""
        stats = self.stats
        if self._stopped or self._loop is None:
            return stats
        self._stopped = self.stopping = True
        loop = self.loop
        end = loop.time()
        stats.elapsed = end - self._t_start
        if self._rate_start is not None:
            stats.rate_duration = max(0.0, end - self._rate_start)
        for task in (*self._tasks, *self._connecting):
            task.cancel()
        await asyncio.gather(*self._tasks, *self._connecting, return_exceptions=True)
        self._waiting.clear()
        for charger in self.chargers:
            charger.cancel_timers()
            if charger.queue:
                stats.unsent += len(charger.queue)
            charger.queue = None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.config.drain_timeout):
                while stats.in_flight > 0 and stats.connected > 0:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
        self._sample_memory()
        if not stats.rss_connected:  # not every charger booted: memory as it is now
            stats.rss_connected = max(stats.rss_baseline, rss_bytes()[0])
        for charger in self.chargers:
            if charger.link is not None:
                charger.link.close(1000, "load test over")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.config.close_timeout):
                while stats.connected > 0:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
        for charger in self.chargers:
            if charger.link is not None:
                charger.link.abort()
        await asyncio.sleep(0)
        if self._rate_start is not None:
            stats.rate_calls = self.measured_calls
        self._sample_memory()
        stats.cpu_seconds = time.process_time() - self._cpu_start
        return stats

    async def reconnect_storm(self, timeout: float | None = None) -> float | None:
        """Drop every connection at once (TCP reset, as in a network outage), then connect
        every charger again at once. Return the seconds until all booted again (None after
        ``timeout``, default ``storm_timeout`` or else ``boot_timeout``); per-charger times go
        to ``stats.storm_boot``.
        """
        stats, loop = self.stats, self.loop
        self.dropping = True
        try:
            for charger in self.chargers:
                charger.cancel_timers()
                if charger.link is not None:
                    charger.link.abort()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.close_timeout):
                    while stats.connected > 0:  # noqa: ASYNC110 - lost callbacks run soon
                        await asyncio.sleep(0.01)
        finally:
            self.dropping = False
        stats.storm_all_booted_after = None
        self.storm_waiting = set(self.chargers)
        self._storm_done.clear()
        self._storm_start = loop.time()
        self._cap = 0
        for charger in self.chargers:
            if charger.state == IDLE:
                self.queue_connect(charger)
        try:
            if timeout is None:
                timeout = self.config.storm_timeout or self.config.boot_timeout
            async with asyncio.timeout(timeout):
                await self._storm_done.wait()
        except TimeoutError:
            return None
        return stats.storm_all_booted_after

    def storm_booted(self, charger: Charger, now: float) -> None:
        """A charger booted again during a reconnect storm."""
        waiting = self.storm_waiting
        assert waiting is not None
        waiting.discard(charger)
        self.stats.storm_boot.record(now - self._storm_start)
        if not waiting:
            self.stats.storm_all_booted_after = now - self._storm_start
            self.storm_waiting = None
            self._storm_done.set()

    def _spawn(self, coro: Any) -> None:
        self._tasks.append(self.loop.create_task(coro))

    # ---------------------------------------------------------------- connecting

    def queue_connect(self, charger: Charger) -> None:
        """Ask for a connection of ``charger`` (now, or when a handshake slot frees up)."""
        if self.stopping:
            return
        charger.t_misc = None
        charger.state = WAITING
        charger.t_request = self.loop.time()
        self._waiting.append(charger)
        self._pump()

    def _pump(self) -> None:
        cap = self._cap
        loop = self.loop
        while self._waiting and (not cap or self._inflight < cap) and not self.stopping:
            charger = self._waiting.popleft()
            self._inflight += 1
            task = loop.create_task(self._connect(charger))
            self._connecting.add(task)
            task.add_done_callback(self._connected)

    def _connected(self, task: asyncio.Task[None]) -> None:
        self._connecting.discard(task)
        self._inflight -= 1
        if not self.stopping:
            self._pump()

    async def _connect(self, charger: Charger) -> None:
        """TCP connect and opening handshake of one charger; retry later on failure."""
        config, stats, loop = self.config, self.stats, self.loop
        stats.connect_attempts += 1
        charger.state = CONNECTING
        key = new_key()
        request = build_request(self._host, self._port, self._path, charger.id,
                                charger.subprotocol, key, config.password)
        handshake: asyncio.Future[int] = loop.create_future()
        link: Link | None = None
        began = loop.time()
        try:
            async with asyncio.timeout(config.open_timeout):
                tls = self._tls(charger.id) if self._tls is not None else None
                _, link = await loop.create_connection(
                    lambda: Link(charger, request, key, charger.subprotocol, handshake),
                    self._addr, self._port, ssl=tls,
                    server_hostname=self._host if tls is not None else None)
                status = await handshake
        except TimeoutError:
            stats.handshake_timeouts += 1
            status = None
        except (OSError, TlsConfigError):  # refused, TLS failed, its certificate unreadable
            stats.connect_errors += 1
            status = None
        except asyncio.CancelledError:
            if link is not None and not link.is_open:
                link.abort()
            raise
        if status == 101:
            stats.handshake.record(loop.time() - began)
            return
        if status is not None:
            key = str(status) if status > 0 else ("lost" if status == LOST else "invalid")
            stats.refused[key] = stats.refused.get(key, 0) + 1
        if link is not None:
            link.abort()
        if charger.state == CONNECTING:
            charger.state = IDLE
        charger.retry()

    async def _ramp(self) -> None:
        """Connect ``ramp_rate`` chargers per second."""
        loop, step = self.loop, 1.0 / self.config.ramp_rate
        began = loop.time()
        for n, charger in enumerate(self.chargers):
            delay = began + n * step - loop.time()
            if delay > 0.001:
                await asyncio.sleep(delay)
            self.queue_connect(charger)

    def first_boot(self) -> None:
        """A charger booted for the first time (the last one ends the connect phase)."""
        stats = self.stats
        if stats.ever_booted == len(self.chargers):
            stats.all_booted_after = self.loop.time() - self._t_start
            self._sample_memory()
            stats.rss_connected = rss_bytes()[0]
            self._all_booted.set()

    # ---------------------------------------------------------------- traffic

    def start_traffic(self, charger: Charger, interval: int) -> None:
        """Timer mode: arm the booted charger's timers at a random phase."""
        config = self.config
        if config.rate > 0:
            return
        loop = self.loop
        heartbeat = config.heartbeat_interval or interval or 300
        charger.t_hb = loop.call_later(heartbeat * random.random(), charger.heartbeat_tick,
                                       heartbeat)
        if config.status_interval > 0:
            charger.t_status = loop.call_later(config.status_interval * random.random(),
                                               charger.status_tick, config.status_interval)
        if config.sessions and config.session_interval >= 0:
            charger.t_session = loop.call_later(config.session_interval * random.random(),
                                                charger.session_tick)

    async def _dispatch(self) -> None:
        """Fixed-rate mode: hand out ``rate`` CALLs per second, each due at its own time."""
        config, stats = self.config, self.stats
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(config.boot_timeout):
                await self._all_booted.wait()
        loop, rate, chargers = self.loop, config.rate, self.chargers
        cycle = kinds.rate_cycle(config.sessions, config.meter_samples)
        size, count = len(cycle), len(chargers)
        # Each charger starts at another point of the cycle, so that every second of traffic
        # carries the whole mix (in step, all would send their session starts at once, then
        # all their meter values...: waves of one kind, each ``count / rate`` seconds long).
        for number, each in enumerate(chargers):
            each.step = number % size
        start = loop.time()
        self._rate_start = start + config.warmup
        self.measure_from = start + config.warmup  # latencies of the rate phase only
        self.measured_calls = 0
        scheduled = index = 0
        while True:
            due = int((loop.time() - start) * rate) - scheduled
            while due > 0:
                charger = None
                for _ in range(count):
                    candidate = chargers[index]
                    index = index + 1 if index + 1 < count else 0
                    if candidate.state == BOOTED:
                        charger = candidate
                        break
                if charger is None:  # nobody to send: these CALLs are lost
                    stats.dropped += due
                    scheduled += due
                    break
                charger.rate_step(cycle[charger.step % size], start + scheduled / rate)
                charger.step += 1
                scheduled += 1
                due -= 1
            # Wake at most once per DISPATCH_TICK and send what fell due meanwhile: at
            # thousands of CALLs per second a sleep per CALL costs more than the CALL, and
            # uvloop's millisecond timers turn sub-millisecond sleeps into a busy loop.
            # Latency is still counted from each CALL's own due time.
            wait = start + (scheduled + 1) / rate - loop.time()
            await asyncio.sleep(min(max(wait, DISPATCH_TICK), 0.01))

    # ---------------------------------------------------------------- housekeeping

    async def _sweep(self) -> None:
        """Every second: CALLs past the call timeout, memory, progress."""
        loop, chargers = self.loop, self.chargers
        while True:
            await asyncio.sleep(self.progress_interval)
            limit = loop.time() - self.config.call_timeout
            for charger in chargers:
                if charger.p_uid is not None and charger.p_sent < limit:
                    charger.timed_out()
            self._sample_memory()
            if self.on_progress is not None:
                self.on_progress(self.progress())

    def progress(self) -> dict[str, Any]:
        """A snapshot for the live status line (resets the latency window)."""
        stats, now = self.stats, self.loop.time()
        then, calls = self._last
        self._last = (now, stats.calls_sent)
        p99 = self.window.quantile(0.99)
        self.window = Histogram()
        return {
            "elapsed": now - self._t_start,
            "chargers": stats.chargers,
            "connected": stats.connected,
            "booted": stats.booted,
            "ever_booted": stats.ever_booted,
            "calls": stats.calls_sent,
            "answered": stats.results + stats.call_errors,
            "per_s": (stats.calls_sent - calls) / (now - then) if now > then else 0.0,
            "p99": p99,
            "errors": stats.call_errors,
            "timeouts": stats.timeouts,
            "dropped": stats.dropped,
            "refused": sum(stats.refused.values()),
            "reconnects": stats.reconnects,
        }

    def _sample_memory(self) -> None:
        current, peak = rss_bytes()
        self.stats.rss_peak = max(self.stats.rss_peak, peak, current)


async def _first(*aws: Coroutine[Any, Any, Any]) -> None:
    """Wait until the first of ``aws`` is done; cancel the others."""
    tasks = [asyncio.ensure_future(aw) for aw in aws]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def tls_contexts(config: LoadConfig) -> Callable[[str], ssl.SSLContext] | None:
    """The client TLS context of each charger for a ``wss://`` fleet (``None`` for ``ws://``):
    one context shared by the whole fleet, or one per connection when the client
    certificate's path holds ``{id}`` (security profile 3 with a certificate per charger).
    Raises :class:`~simulators.tls.TlsConfigError` for a missing or unusable file."""
    if not config.tls:
        return None
    options = TlsOptions(Path(config.ca_file) if config.ca_file else None,
                         config.cert_file, config.key_file)
    first = options.context(config.charger_id(config.first))  # a bad file fails here
    if options.per_station:
        return options.context
    return lambda _station_id: first
