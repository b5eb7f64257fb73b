"""``csms-sim``: run a fleet of simulated charging stations against a CSMS.

Example: ``csms-sim --protocol 2.0.1 --count 50 --url ws://127.0.0.1:9000/ocpp --duration 60``.
Prints a one-line summary every ``--summary-interval`` seconds and at the end; exits 1 if not
every station booted, 0 otherwise.

``csms-sim fleet --count 5000 --rate 2000 ...`` runs the load generator instead
(:mod:`simulators.loadgen`: thousands of lightweight chargers; ``csms-sim fleet --help``).

Security profiles (OCPP 2.0.1 Part 2 §A00, 1.6 Security Whitepaper): ``--password`` sends Basic
auth (profile 1, and 2 over ``wss://``); a ``wss://`` URL uses TLS, trusting ``--ca-file`` (else
the system store; HTTPS uploads trust it too); ``--cert``/``--key`` present a client certificate
(profile 3), ``{id}`` in their paths standing for each station's id. A connection problem
(refused handshake, TLS failure) is printed on stderr the first time it is seen; with
``--max-connect-attempts N`` a station stops after N failures in a row, and the run ends
(exit 1) once every station has.

Fault scenarios (:mod:`simulators.scenarios`): ``--scenario fixed-by-unlock`` applies one to every
station; ``--scenario-set clears_after=5`` changes a field (JSON value, else a string);
``--scenario-file my.json`` registers scenarios from JSON; ``--list-scenarios`` prints them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any

from simulators.base import StationBase
from simulators.fleet import PROTOCOLS, Fleet
from simulators.scenarios import (
    SCENARIOS,
    Scenario,
    ScenarioError,
    get_scenario,
    load_scenarios,
)
from simulators.tls import TlsConfigError, add_tls_arguments

GIVE_UP_POLL = 0.25
"""Seconds between checks whether every station gave up connecting."""


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="csms-sim", description="Simulated OCPP 1.6J / 2.0.1 charging stations."
    )
    parser.add_argument("--protocol", choices=sorted(PROTOCOLS), default="1.6")
    parser.add_argument("--count", type=int, default=1, help="number of stations")
    parser.add_argument("--url", default="ws://127.0.0.1:9000/ocpp",
                        help="CSMS endpoint; the station id is appended")
    parser.add_argument("--id-prefix", default="SIM-")
    parser.add_argument("--connectors", type=int, default=2)
    parser.add_argument("--password", default=None, help="HTTP Basic auth password")
    add_tls_arguments(parser, uploads=True)
    parser.add_argument("--max-connect-attempts", type=int, default=None, metavar="N",
                        help="a station gives up after N failed connection attempts in a row "
                             "(default: retry forever, as a charger does)")
    parser.add_argument("--duration", type=float, default=None,
                        help="seconds to run (default: until Ctrl-C)")
    parser.add_argument("--sessions", action="store_true",
                        help="run charging sessions with meter values")
    parser.add_argument("--session-every", type=float, default=60.0)
    parser.add_argument("--session-duration", type=float, default=30.0)
    parser.add_argument("--meter-interval", type=float, default=10.0)
    parser.add_argument("--heartbeat-interval", type=float, default=None,
                        help="override the interval the CSMS returns in BootNotification")
    parser.add_argument("--concurrency", type=int, default=50,
                        help="stations connecting/booting at the same time")
    parser.add_argument("--start-timeout", type=float, default=30.0)
    parser.add_argument("--summary-interval", type=float, default=10.0)
    parser.add_argument("--log-level", default="WARNING",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"])
    parser.add_argument("--scenario", default=None, metavar="NAME",
                        help="fault scenario applied to every station (see --list-scenarios)")
    parser.add_argument("--scenario-set", action="append", default=[], metavar="KEY=VALUE",
                        help="change a field of the scenario, e.g. clears_after=5 or "
                             'healed_by=\'["unlock"]\' (repeatable)')
    parser.add_argument("--scenario-file", action="append", default=[], metavar="FILE",
                        help="JSON file of extra scenarios to register (repeatable)")
    parser.add_argument("--list-scenarios", action="store_true",
                        help="print the scenario names with a description and exit")
    return parser


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def build_scenario(args: argparse.Namespace) -> Scenario | None:
    """The scenario selected by ``--scenario`` / ``--scenario-set`` (ScenarioError if bad)."""
    for path in args.scenario_file:
        load_scenarios(path)
    if args.scenario is None:
        if args.scenario_set:
            raise ScenarioError("--scenario-set needs --scenario")
        return None
    scenario = get_scenario(args.scenario)
    changes: dict[str, Any] = {}
    for item in args.scenario_set:
        key, sep, value = item.partition("=")
        if not sep:
            raise ScenarioError(f"--scenario-set expects KEY=VALUE, got {item!r}")
        changes[key.strip()] = _parse_value(value)
    return scenario.with_(**changes) if changes else scenario


def list_scenarios() -> str:
    """One line per registered scenario."""
    width = max(len(name) for name in SCENARIOS)
    return "\n".join(f"{name:<{width}}  {sc.description}" for name, sc in SCENARIOS.items())


def _report_problem(station: StationBase, problem: str) -> None:
    print(f"csms-sim: {station.station_id}: cannot connect to {station.endpoint}: {problem}",
          file=sys.stderr, flush=True)


async def run(args: argparse.Namespace, scenario: Scenario | None = None, *,
              stop: asyncio.Event | None = None) -> int:
    """Run the fleet until ``--duration`` elapses, SIGINT/SIGTERM, ``stop`` is set, or every
    station gave up connecting; return the exit code."""
    if scenario is None:
        scenario = build_scenario(args)
    fleet = Fleet(
        args.protocol,
        args.count,
        args.url,
        id_prefix=args.id_prefix,
        connectors=args.connectors,
        password=args.password,
        session_every=args.session_every if args.sessions else None,
        session_duration=args.session_duration,
        meter_interval=args.meter_interval,
        concurrency=args.concurrency,
        start_timeout=args.start_timeout,
        heartbeat_interval=args.heartbeat_interval,
        scenario=scenario,
        ca_file=args.ca_file,
        cert_file=args.cert,
        key_file=args.key,
        max_connect_attempts=args.max_connect_attempts,
        on_problem=_report_problem,
    )
    done = stop if stop is not None else asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, done.set)
    began = time.monotonic()

    def report() -> None:
        print(f"[{time.monotonic() - began:7.1f}s] {fleet.summary()}", flush=True)

    try:
        starting = asyncio.create_task(fleet.start())
        deadline = None if args.duration is None else began + args.duration
        next_report = began + args.summary_interval
        while not done.is_set() and fleet.gave_up < len(fleet.stations):
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            if now >= next_report:
                report()
                next_report = now + args.summary_interval
            # Wake up for the next summary, the deadline, or to see stations give up.
            step = min(next_report - now, GIVE_UP_POLL,
                       (deadline - now) if deadline is not None else GIVE_UP_POLL)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(step, 0.01)):
                    await done.wait()
        starting.cancel()
        await asyncio.gather(starting, return_exceptions=True)
        report()
    finally:
        for sig in signals:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
        await fleet.stop()
    ok = fleet.ever_booted == len(fleet.stations)
    print(f"done: {fleet.ever_booted}/{len(fleet.stations)} stations booted"
          + ("" if ok else " (FAILED)"), flush=True)
    if not ok and fleet.gave_up:
        print(f"{fleet.gave_up} station(s) gave up after --max-connect-attempts "
              f"{args.max_connect_attempts}", flush=True)
    for problem, times in sorted(fleet.problems.items(), key=lambda item: -item[1]):
        print(f"connection problem ({times}x): {problem}", file=sys.stderr, flush=True)
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point (``csms-sim fleet ...``: the load generator)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["fleet"]:
        from simulators.loadgen.cli import main as fleet_main

        return fleet_main(arguments[1:], prog="csms-sim fleet")
    args = build_parser().parse_args(arguments)
    try:
        if args.list_scenarios:
            for path in args.scenario_file:
                load_scenarios(path)
            print(list_scenarios())
            return 0
        scenario = build_scenario(args)
    except (ScenarioError, OSError, ValueError) as exc:
        print(f"csms-sim: {exc}", file=sys.stderr)
        return 2
    if args.count < 1 or args.connectors < 1:
        print("csms-sim: --count and --connectors must be >= 1", file=sys.stderr)
        return 2
    if args.max_connect_attempts is not None and args.max_connect_attempts < 1:
        print("csms-sim: --max-connect-attempts must be >= 1", file=sys.stderr)
        return 2
    if (args.cert or args.key) and not args.url.lower().startswith("wss://"):
        print("csms-sim: warning: --cert/--key are only presented on wss:// URLs",
              file=sys.stderr)
    logging.basicConfig(level=args.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return asyncio.run(run(args, scenario))
    except TlsConfigError as exc:
        print(f"csms-sim: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
