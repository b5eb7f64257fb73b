"""Run many simulated stations of one OCPP version concurrently (load and soak testing)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from simulators.base import StationBase, StationError
from simulators.station16 import Station16
from simulators.station201 import Station201
from simulators.tls import TlsOptions

log = logging.getLogger("simulators.fleet")

PROTOCOLS: dict[str, type[StationBase]] = {"1.6": Station16, "2.0.1": Station201}


class Fleet:
    """``count`` stations named ``<id_prefix><n>`` (n zero-padded, from 1) against ``url``.

    Each station keeps at most ``max_records`` received/sent/frame records. With
    ``session_every`` each station runs a charging session (start, meter values every
    ``meter_interval`` s for ``session_duration`` s, stop) roughly every ``session_every`` s.
    Extra keyword arguments go to the station constructor.

    TLS (``wss://`` URL, security profiles 2 and 3): ``ca_file`` is trusted for the server
    certificate; ``cert_file`` / ``key_file`` are the client certificate, ``{id}`` in them being
    replaced by each station's id (one certificate per charger, CN = its identity). Without
    ``{id}`` all stations share one TLS context.

    Failed connection attempts are counted per description in ``problems``, and
    ``on_problem(station, description)`` is called the first time a description is seen.
    """

    def __init__(
        self,
        protocol: str,
        count: int,
        url: str,
        *,
        id_prefix: str = "SIM-",
        connectors: int = 2,
        password: str | None = None,
        session_every: float | None = None,
        session_duration: float = 30.0,
        meter_interval: float = 10.0,
        power_w: float = 11_000.0,
        concurrency: int = 50,
        start_timeout: float = 30.0,
        max_records: int = 500,
        ca_file: str | Path | None = None,
        cert_file: str | Path | None = None,
        key_file: str | Path | None = None,
        on_problem: Callable[[StationBase, str], None] | None = None,
        **station_kwargs: Any,
    ) -> None:
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {sorted(PROTOCOLS)}")
        if count < 1:
            raise ValueError("count must be >= 1")
        self.protocol = protocol
        self.session_every = session_every
        self.session_duration = session_duration
        self.meter_interval = meter_interval
        self.power_w = power_w
        self.concurrency = max(1, concurrency)
        self.start_timeout = start_timeout
        self.problems: dict[str, int] = {}
        """Failed connection attempts per description (refusal, TLS, network error)."""
        self.on_problem = on_problem
        tls = TlsOptions(
            Path(ca_file) if ca_file is not None else None,
            str(cert_file) if cert_file is not None else None,
            str(key_file) if key_file is not None else None,
        )
        if (tls.ca_file or tls.client_certificate) and not tls.per_station:
            station_kwargs.setdefault("ssl_context", tls.context(""))  # one for all
        width = max(3, len(str(count)))
        cls = PROTOCOLS[protocol]
        self.stations: list[StationBase] = [
            cls(
                f"{id_prefix}{n:0{width}d}",
                url,
                connectors=connectors,
                password=password,
                ca_file=tls.ca_file,
                cert_file=tls.cert_file,
                key_file=tls.key_file,
                **station_kwargs,
            )
            for n in range(1, count + 1)
        ]
        for station in self.stations:
            station.max_records = max_records  # bound memory of long runs
            station.problem_listeners.append(self._problem)
        self.sessions_started = 0
        self.sessions_completed = 0
        self.session_errors = 0
        self._drivers: list[asyncio.Task[None]] = []

    # ---------------------------------------------------------------- counters

    @property
    def connected(self) -> int:
        """Stations with an open WebSocket."""
        return sum(st.connected for st in self.stations)

    @property
    def booted(self) -> int:
        """Stations currently operational (boot accepted on the current connection)."""
        return sum(st.booted.is_set() for st in self.stations)

    @property
    def ever_booted(self) -> int:
        """Stations that got at least one accepted BootNotification."""
        return sum(st.boot_count > 0 for st in self.stations)

    @property
    def boots(self) -> int:
        """Accepted BootNotifications over all stations."""
        return sum(st.boot_count for st in self.stations)

    @property
    def messages_sent(self) -> int:
        """WebSocket frames sent by all stations (CALLs and answers)."""
        return sum(st.frames_sent for st in self.stations)

    @property
    def messages_received(self) -> int:
        """WebSocket frames received by all stations."""
        return sum(st.frames_received for st in self.stations)

    @property
    def gave_up(self) -> int:
        """Stations that stopped retrying (``max_connect_attempts`` failures in a row)."""
        return sum(st.gave_up for st in self.stations)

    def _problem(self, station: StationBase, problem: str) -> None:
        first = problem not in self.problems
        self.problems[problem] = self.problems.get(problem, 0) + 1
        if first and self.on_problem is not None:
            self.on_problem(station, problem)

    @property
    def faulted(self) -> int:
        """Stations with at least one active fault."""
        return sum(bool(st.faults) for st in self.stations)

    @property
    def healed(self) -> int:
        """Stations whose scenario fault was healed at least once."""
        return sum(bool(st.heals) for st in self.stations)

    def summary(self) -> str:
        """One-line status (with fault counters when a scenario runs)."""
        line = (
            f"stations={len(self.stations)} connected={self.connected} booted={self.booted} "
            f"ever_booted={self.ever_booted} boots={self.boots} sent={self.messages_sent} "
            f"received={self.messages_received} sessions={self.sessions_completed}"
            f"/{self.sessions_started} session_errors={self.session_errors}"
        )
        if any(st.scenario is not None for st in self.stations):
            line += f" faulted={self.faulted} healed={self.healed}"
        if self.problems:
            line += f" connect_failures={sum(self.problems.values())}"
        if self.gave_up:
            line += f" gave_up={self.gave_up}"
        return line

    # ---------------------------------------------------------------- lifecycle

    async def start(self, *, wait: bool = True) -> int:
        """Start every station with at most ``concurrency`` connecting/booting at once; with
        ``wait`` return the number of stations booted (each waits ``start_timeout`` at most;
        stations that did not boot keep retrying in the background)."""
        gate = asyncio.Semaphore(self.concurrency)

        async def one(station: StationBase) -> None:
            async with gate:
                await station.start(wait=False)
                if wait:  # until booted, timed out, or given up connecting
                    with contextlib.suppress(StationError):
                        await station._wait_booted(self.start_timeout, stop_on_timeout=False)

        await asyncio.gather(*(one(st) for st in self.stations))
        if self.session_every is not None:
            self._drivers = [
                asyncio.create_task(self._drive(st, n)) for n, st in enumerate(self.stations)
            ]
        return self.ever_booted

    async def stop(self) -> None:
        """Stop session drivers and all stations."""
        for task in self._drivers:
            task.cancel()
        await asyncio.gather(*self._drivers, return_exceptions=True)
        self._drivers = []
        await asyncio.gather(*(st.stop() for st in self.stations))

    async def __aenter__(self) -> Fleet:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _drive(self, station: StationBase, index: int) -> None:
        """Session loop of one station (until cancelled by :meth:`stop`)."""
        assert self.session_every is not None
        rng = random.Random(index)
        await asyncio.sleep(rng.uniform(0, self.session_every))
        samples = max(1, int(self.session_duration / max(self.meter_interval, 0.01)))
        tag = f"TAG-{station.station_id}"[:20]
        while True:
            if station.booted.is_set():
                connector = next(
                    (c for c in range(1, station.connectors + 1)
                     if c not in station.sessions and c not in station.faults),
                    None,
                )
                if connector is not None:
                    await self._one_session(station, connector, tag, samples)
            await asyncio.sleep(self.session_every)

    async def _one_session(
        self, station: StationBase, connector: int, tag: str, samples: int
    ) -> None:
        self.sessions_started += 1
        energy = 0.0
        try:
            await station.start_session(connector, tag, 0)
            for _ in range(samples):
                await asyncio.sleep(self.meter_interval)
                energy += self.power_w * self.meter_interval / 3600.0
                await station.send_meter_values(connector, energy, self.power_w)
            await station.stop_session(connector, energy)
            self.sessions_completed += 1
        except (StationError, TimeoutError, ValueError, ConnectionError) as exc:
            self.session_errors += 1
            log.warning("%s: session failed: %r", station.station_id, exc)
            station.sessions.pop(connector, None)
