"""Command line of the scaling benchmark (``python benchmarks/scale.py``)."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.scaling import procs
from benchmarks.scaling.phases import Context, connection_run, engine, ladder
from benchmarks.scaling.plan import PLANS, SECTIONS, Plan
from benchmarks.scaling.postgres import DEFAULT_ADMIN_URL, Databases
from benchmarks.scaling.report import ratios, render, targets
from benchmarks.scaling.servers import CONFIGS, SERVER_SETTINGS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="benchmarks/scale.py",
        description="Scaling benchmark: our server (SQLite, PostgreSQL, --workers 2), the plain "
                    "ocpp library and a websockets echo server under the same load, on "
                    "loopback; prints the figures, the ratios and the targets.")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="shorter run (about 3 minutes)")
    mode.add_argument("--smoke", action="store_true",
                      help="tiny run (50 chargers, a few seconds per section, SQLite only)")
    parser.add_argument("--skip-postgres", action="store_true",
                        help="no PostgreSQL runs (SQLite and the baselines only)")
    parser.add_argument("--only", action="append", default=[], metavar="SECTION",
                        help=f"only these sections ({', '.join(SECTIONS)}); repeat or "
                             "separate with commas")
    parser.add_argument("--servers", default=None, metavar="NAMES",
                        help=f"only these servers, comma-separated ({', '.join(CONFIGS)})")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH",
                        help="where to write every figure (default: a file in the temp dir)")
    parser.add_argument("--postgres-url", default=os.environ.get("CSMS_BENCH_POSTGRES_URL",
                                                                 DEFAULT_ADMIN_URL),
                        help="admin database: only used to CREATE/DROP bench_<random> "
                             "databases (default %(default)s)")
    parser.add_argument("--budget", type=float, default=None, metavar="SECONDS",
                        help="skip phases that would start after this long (default by mode)")
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR",
                        help="also record our server with py-spy at --profile-rate, raw stacks "
                             "in DIR, and print its hotspots")
    parser.add_argument("--profile-rate", type=float, default=2000.0)
    parser.add_argument("--keep", action="store_true",
                        help="keep the scratch folder (server logs, databases files)")
    return parser


def choose_plan(args: argparse.Namespace) -> Plan:
    plan = PLANS["smoke" if args.smoke else "quick" if args.quick else "full"]
    only = {name.strip() for value in args.only for name in value.split(",") if name.strip()}
    unknown = only - set(SECTIONS)
    if unknown:
        raise SystemExit(f"unknown section(s): {', '.join(sorted(unknown))}; "
                         f"choose from {', '.join(SECTIONS)}")
    if only:
        plan = plan.sections(only)
    if args.servers:
        names = {name.strip() for name in args.servers.split(",") if name.strip()}
        if names - set(CONFIGS):
            raise SystemExit(f"unknown server(s): {', '.join(sorted(names - set(CONFIGS)))}; "
                             f"choose from {', '.join(CONFIGS)}")
        plan = plan.servers(names)
    if args.skip_postgres:
        plan = plan.without_postgres()
    return plan


def needs_postgres(plan: Plan) -> bool:
    return any(c.database == "postgres" for c in plan.ladder_configs) or any(
        r.config.database == "postgres" for r in plan.connection_runs)


def machine(loadavg_start: float) -> dict[str, Any]:
    uvloop = importlib.util.find_spec("uvloop") is not None
    return {
        "cpus": os.cpu_count(),
        "open_files_limit": resource.getrlimit(resource.RLIMIT_NOFILE),
        "python": platform.python_version(),
        "loop": "uvloop" if uvloop else "asyncio (uvloop not installed)",
        "loadavg_start": loadavg_start,
        "loadavg_end": loadavg_start,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    plan = choose_plan(args)
    started, wall = time.monotonic(), datetime.now(UTC)
    stamp = wall.strftime("%Y%m%d-%H%M%S")
    json_path = args.json or Path(tempfile.gettempdir()) / f"csms-scale-{stamp}.json"

    def log(message: str) -> None:
        print(f"[{time.monotonic() - started:6.0f}s] {message}", file=sys.stderr, flush=True)

    results: dict[str, Any] = {
        "meta": {"mode": plan.mode, "started": wall.isoformat(), "json": str(json_path),
                 "argv": list(sys.argv[1:] if argv is None else argv),
                 "machine": machine(procs.loadavg()), "notes": [],
                 "server_settings": SERVER_SETTINGS},
        "throughput": {}, "connections": [], "engine": None, "skipped": [],
    }
    databases: Databases | None = None
    if needs_postgres(plan):
        databases = Databases(args.postgres_url)
        problem = databases.check()
        if problem is not None:
            note = f"PostgreSQL unreachable ({problem}): PostgreSQL runs skipped"
            log(note)
            results["meta"]["notes"].append(note)
            plan = plan.without_postgres()
            databases = None
    workdir = Path(tempfile.mkdtemp(prefix="csms-scale-"))
    budget = args.budget if args.budget is not None else plan.budget_seconds
    ctx = Context(plan=plan, workdir=workdir, databases=databases,
                  deadline=started + budget, log=log, profile_dir=args.profile,
                  profile_rate=args.profile_rate, skipped=results["skipped"])
    log(f"mode {plan.mode}, scratch folder {workdir}, budget {budget:.0f} s")
    try:
        if plan.engine_events:
            results["engine"] = engine(ctx)
        for config in plan.ladder_configs:
            if not ctx.out_of_time(f"throughput {config.name}"):
                results["throughput"][config.name] = ladder(ctx, config)
        for run in plan.connection_runs:
            if not ctx.out_of_time(f"connections {run.config.name} {run.count}"):
                results["connections"].append(connection_run(ctx, run))
    finally:
        if databases is not None:
            left = databases.drop_all()
            if left:
                results["meta"]["notes"].append(f"could not drop databases {left}")
        if args.keep:
            log(f"scratch folder kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    results["ratios"] = ratios(results)
    results["targets"] = targets(results)
    results["meta"]["duration_s"] = round(time.monotonic() - started, 1)
    results["meta"]["machine"]["loadavg_end"] = procs.loadavg()
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=2))
    print(render(results), flush=True)
    return 0
