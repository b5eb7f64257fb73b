"""Micro-benchmark: events per second through ``DiagnosticsEngine.observe``.

A realistic mix for a fleet of stations (2 connectors each), built up front so only the engine
is timed: mostly heartbeats and meter values, status changes around sessions, transactions,
now and then a fault (with its clear), a boot, a disconnect/reconnect. Commands the engine
sends are answered (accepted) right away, and ``tick`` runs once per simulated second, as a
server would drive it. Times are passed in: the simulated clock advances so that every station
sends a heartbeat about every 4 minutes (as with a 300 s heartbeat interval), whatever the
fleet size.

Run: ``PYTHONPATH=. python benchmarks/engine_throughput.py [--stations 2000] [--events 300000]``
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from diagnostics import DiagnosticsEngine, SendCommand, Timings, load_playbooks, load_sla
from diagnostics.commands import CommandOutcome, OutcomeStatus
from diagnostics.events import (
    ConnectorStatus,
    ConnectorStatusChanged,
    EngineInput,
    FaultReported,
    HeartbeatReceived,
    MeterSample,
    MeterValuesReceived,
    StationBooted,
    StationConnected,
    StationDisconnected,
    TransactionEnded,
    TransactionStarted,
)

CONFIG = Path(__file__).resolve().parents[1] / "config"
T0 = datetime(2025, 1, 1, tzinfo=UTC)
HEARTBEAT_SHARE = 0.55
HEARTBEAT_EVERY = 240.0  # seconds per station
FAULTS = ["ConnectorLockFailure", "InternalError", "ReaderFailure", "HighTemperature",
          "EVCommunicationError", "OtherError"]


def status(station: str, at: datetime, connector: int, value: str,
           error: str = "NoError") -> ConnectorStatusChanged:
    return ConnectorStatusChanged(
        station_id=station, at=at, connector_id=connector, evse_id=None,
        status=ConnectorStatus(value), raw_status=value, error_code=error,
    )


def build_events(stations: int, count: int, seed: int) -> list[EngineInput]:
    """A deterministic event stream of about ``count`` events."""
    rng = random.Random(seed)
    step = timedelta(seconds=HEARTBEAT_EVERY * HEARTBEAT_SHARE / stations)
    events: list[EngineInput] = []
    at = T0
    ids = [f"CP{n:05d}" for n in range(stations)]
    for station in ids:
        events.append(StationConnected(station_id=station, at=at, protocol="ocpp1.6"))
        events.append(StationBooted(station_id=station, at=at, vendor="Acme", model="AC22"))
        for connector in (1, 2):
            events.append(status(station, at, connector, "Available"))
    sessions: dict[tuple[str, int], tuple[str, float]] = {}
    tx = 0
    while len(events) < count:
        at += step
        station = rng.choice(ids)
        connector = rng.choice((1, 2))
        roll = rng.random()
        key = (station, connector)
        if roll < HEARTBEAT_SHARE:
            events.append(HeartbeatReceived(station_id=station, at=at))
        elif roll < 0.80:
            if key in sessions:
                tx_id, meter = sessions[key]
                meter += rng.uniform(50, 500)
                sessions[key] = (tx_id, meter)
                events.append(MeterValuesReceived(
                    station_id=station, at=at, connector_id=connector, evse_id=None,
                    transaction_id=tx_id, samples=(MeterSample(timestamp=at, value=meter),),
                ))
            else:
                events.append(HeartbeatReceived(station_id=station, at=at))
        elif roll < 0.95:
            if key in sessions:
                tx_id, meter = sessions.pop(key)
                events.append(status(station, at, connector, "Finishing"))
                events.append(TransactionEnded(station_id=station, at=at, transaction_id=tx_id,
                                               meter_stop_wh=meter, stopped_at=at))
                events.append(status(station, at, connector, "Available"))
            else:
                tx += 1
                tx_id = str(tx)
                sessions[key] = (tx_id, 10_000.0)
                events.append(status(station, at, connector, "Preparing"))
                events.append(TransactionStarted(
                    station_id=station, at=at, transaction_id=tx_id, connector_id=connector,
                    evse_id=None, id_token="TAG", meter_start_wh=10_000.0, started_at=at,
                ))
                events.append(status(station, at, connector, "Charging"))
        elif roll < 0.985:
            code = rng.choice(FAULTS)
            events.append(status(station, at, connector, "Faulted", code))
            events.append(FaultReported(station_id=station, at=at, connector_id=connector,
                                        evse_id=None, code=code))
            if rng.random() < 0.7:  # most clear by themselves
                events.append(status(station, at, connector, "Available"))
        elif roll < 0.995:
            events.append(StationBooted(station_id=station, at=at, vendor="Acme", model="AC22"))
        else:
            events.append(StationDisconnected(station_id=station, at=at, reason="ping timeout"))
            events.append(StationConnected(station_id=station, at=at, protocol="ocpp1.6"))
    return events


def run(stations: int, count: int, seed: int) -> tuple[float, int, int, int]:
    """Events/s (wall clock), events, commands sent, actions."""
    rate, events, commands, actions, _cpu_rate = measure(stations, count, seed)
    return rate, events, commands, actions


def measure(stations: int, count: int, seed: int) -> tuple[float, int, int, int, float]:
    """Events/s by the wall clock, events, commands, actions, and events per CPU second of
    this process (what a core of its own does, whatever else the machine runs)."""
    engine = DiagnosticsEngine(
        load_playbooks(CONFIG / "playbooks.toml"), load_sla(CONFIG / "sla.toml"), Timings(),
        upload_base="http://csms/uploads",
    )
    events = build_events(stations, count, seed)
    accepted = CommandOutcome(status=OutcomeStatus.ACCEPTED, action="bench")
    commands = actions = 0
    next_tick = T0 + timedelta(seconds=1)
    observe = engine.observe
    started, cpu_started = time.perf_counter(), time.process_time()
    for event in events:
        now = event.at
        out = observe(event, now)
        if now >= next_tick:
            out += engine.tick(now)
            next_tick = now + timedelta(seconds=1)
        if out:
            actions += len(out)
            for action in out:
                if type(action) is SendCommand:
                    commands += 1
                    actions += len(engine.command_finished(action.command_id, accepted, now))
    elapsed = time.perf_counter() - started
    cpu = max(time.process_time() - cpu_started, 1e-9)
    return len(events) / elapsed, len(events), commands, actions, len(events) / cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stations", type=int, default=2000)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    rates = []
    for _ in range(args.repeat):
        rate, events, commands, actions = run(args.stations, args.events, args.seed)
        rates.append(rate)
    print(f"stations={args.stations} events={events} commands={commands} actions={actions}")
    print(f"engine throughput: {max(rates):,.0f} events/s (best of {args.repeat}; "
          f"runs: {', '.join(f'{r:,.0f}' for r in rates)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
