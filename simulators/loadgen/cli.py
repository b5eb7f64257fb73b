"""Command line of the load generator: ``python -m simulators.loadgen`` / ``csms-sim fleet``.

Example: ``python -m simulators.loadgen --url ws://127.0.0.1:9000/ocpp --count 5000 --mix 0.5
--connect storm --duration 30 --rate 2000 --json out.json``. Exit status 0 when every charger
booted at least once, 1 otherwise, 2 for bad options.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from simulators.loadgen.config import LoadConfig
from simulators.loadgen.fleet import tls_contexts
from simulators.loadgen.progress import StatusLine, summary
from simulators.loadgen.runner import raise_fd_limit, run_processes
from simulators.tls import add_tls_arguments


def build_parser(prog: str = "csms-load") -> argparse.ArgumentParser:
    """Command-line options (see README.md, "Scaling" → "Fleet mode")."""
    p = argparse.ArgumentParser(
        prog=prog,
        description="Load generator: thousands of lightweight OCPP 1.6J / 2.0.1 chargers.")
    p.add_argument("--url", default="ws://127.0.0.1:9000/ocpp",
                   help="CSMS endpoint; the charger id is appended")
    p.add_argument("--count", type=int, default=100, help="chargers")
    p.add_argument("--mix", type=float, default=0.5, help="fraction of OCPP 2.0.1 chargers")
    p.add_argument("--id-prefix", default="LOAD-")
    p.add_argument("--connectors", type=int, default=2)
    p.add_argument("--password", default=None, help="HTTP Basic auth password")
    add_tls_arguments(p)
    g = p.add_argument_group("connecting")
    g.add_argument("--connect", choices=["storm", "ramp"], default="storm",
                   help="storm: all at once; ramp: --ramp-rate per second")
    g.add_argument("--ramp-rate", type=float, default=100.0, help="chargers per second")
    g.add_argument("--max-handshakes", type=int, default=0,
                   help="cap on handshakes in flight while connecting (0: none; a "
                        "--reconnect-storm is never capped)")
    g.add_argument("--open-timeout", type=float, default=30.0)
    g.add_argument("--no-reconnect", action="store_true", help="do not reconnect lost chargers")
    g.add_argument("--reconnect-storm", action="store_true",
                   help="after the traffic: drop every connection at once, reconnect all at "
                        "once and measure until all booted again")
    g.add_argument("--storm-timeout", type=float, default=None,
                   help="longest wait for the reconnect storm (default: --boot-timeout)")
    g = p.add_argument_group("traffic")
    g.add_argument("--rate", type=float, default=0.0,
                   help="fixed open-loop rate, CALLs/s over the fleet (0: per-charger timers)")
    g.add_argument("--warmup", type=float, default=0.0,
                   help="seconds at the start of the rate phase not measured (counted in "
                        "--duration)")
    g.add_argument("--heartbeat-interval", type=float, default=None,
                   help="seconds (default: the interval the CSMS answers at boot)")
    g.add_argument("--status-interval", type=float, default=300.0,
                   help="seconds between status changes of a charger (0: none)")
    g.add_argument("--no-sessions", action="store_true", help="no charging sessions")
    g.add_argument("--session-interval", type=float, default=600.0,
                   help="seconds of pause between sessions of a charger")
    g.add_argument("--meter-interval", type=float, default=60.0,
                   help="seconds between meter values in a session")
    g.add_argument("--meter-samples", type=int, default=5, help="meter values per session")
    g.add_argument("--echo", action="store_true",
                   help="the server echoes frames (bare websockets echo server)")
    g = p.add_argument_group("run")
    g.add_argument("--duration", type=float, default=30.0,
                   help="seconds of traffic after the connect phase")
    g.add_argument("--boot-timeout", type=float, default=60.0,
                   help="the connect phase ends when all booted, at the latest after this")
    g.add_argument("--call-timeout", type=float, default=30.0)
    g.add_argument("--drain-timeout", type=float, default=3.0)
    g.add_argument("--processes", type=int, default=1, help="split over N processes")
    g.add_argument("--no-uvloop", action="store_true", help="plain asyncio even with uvloop")
    g.add_argument("--seed", type=int, default=0)
    g = p.add_argument_group("output")
    g.add_argument("--json", default=None, metavar="PATH",
                   help="write the stats as JSON ('-': stdout instead of the summary)")
    g.add_argument("--progress", dest="progress", action="store_true", default=None,
                   help="status line on stderr every second (default: when a terminal)")
    g.add_argument("--no-progress", dest="progress", action="store_false")
    return p


def config_from(args: argparse.Namespace) -> LoadConfig:
    """The fleet options from parsed arguments (ValueError if inconsistent)."""
    return LoadConfig(
        url=args.url, count=args.count, mix=args.mix, id_prefix=args.id_prefix,
        connectors=args.connectors, password=args.password, ca_file=args.ca_file,
        cert_file=args.cert, key_file=args.key, rate=args.rate,
        warmup=args.warmup,
        heartbeat_interval=args.heartbeat_interval, status_interval=args.status_interval,
        sessions=not args.no_sessions, session_interval=args.session_interval,
        meter_interval=args.meter_interval, meter_samples=args.meter_samples,
        connect=args.connect, ramp_rate=args.ramp_rate, max_handshakes=args.max_handshakes,
        open_timeout=args.open_timeout, reconnect=not args.no_reconnect,
        reconnect_storm=args.reconnect_storm, storm_timeout=args.storm_timeout,
        duration=args.duration, boot_timeout=args.boot_timeout,
        call_timeout=args.call_timeout, drain_timeout=args.drain_timeout, echo=args.echo,
        seed=args.seed,
    )


def main(argv: Sequence[str] | None = None, prog: str = "csms-load") -> int:
    """Console entry point."""
    args = build_parser(prog).parse_args(argv)
    try:
        config = config_from(args)
        if args.processes < 1:
            raise ValueError("--processes must be >= 1")
        tls_contexts(config)  # a missing or unusable TLS file: said now, not per charger
    except ValueError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    per_process = -(-config.count // args.processes)
    if raise_fd_limit(per_process) < per_process + 64:
        print(f"{prog}: warning: the open-files limit is below {per_process} sockets per "
              f"process; use more --processes or raise it (ulimit -n)", file=sys.stderr)
    show = sys.stderr.isatty() if args.progress is None else args.progress
    line = StatusLine(sys.stderr, tty=sys.stderr.isatty()) if show else None
    try:
        stats = run_processes(config, args.processes, line, use_uvloop=not args.no_uvloop)
    except RuntimeError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    finally:
        if line is not None:
            line.finish()
    data = stats.to_dict()
    data["config"] = config.summary()
    if args.json == "-":
        print(json.dumps(data, indent=2))
    else:
        print(summary(stats), flush=True)
        if args.json:
            with open(args.json, "w", encoding="utf-8") as out:
                json.dump(data, out, indent=2)
    return 0 if stats.ever_booted == stats.chargers else 1


if __name__ == "__main__":
    sys.exit(main())
