"""``csms-sim``: run a fleet of simulated charging stations against a CSMS.

Example: ``csms-sim --protocol 2.0.1 --count 50 --url ws://127.0.0.1:9000/ocpp --duration 60``.
Prints a one-line summary every ``--summary-interval`` seconds and at the end; exits 1 if not
every station booted, 0 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Sequence

from simulators.fleet import PROTOCOLS, Fleet


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
    return parser


async def run(args: argparse.Namespace) -> int:
    """Run the fleet until ``--duration`` elapses or SIGINT/SIGTERM; return the exit code."""
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
    )
    done = asyncio.Event()
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
        while not done.is_set():
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            step = args.summary_interval if remaining is None else min(
                args.summary_interval, remaining)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(step, 0.01)):
                    await done.wait()
            if not done.is_set() and (deadline is None or time.monotonic() < deadline):
                report()
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
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point."""
    args = build_parser().parse_args(argv)
    if args.count < 1 or args.connectors < 1:
        print("csms-sim: --count and --connectors must be >= 1", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
