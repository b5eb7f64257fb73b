"""The phases of the benchmark: the fixed-rate ladder, the connection runs (memory per
connection and storms), the diagnostics engine, and an optional py-spy profile."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.scaling import procs
from benchmarks.scaling.loadrun import LoadResult, LoadSpec, held, run_load, steady, whole_run_cpu
from benchmarks.scaling.plan import ConnectionRun, Plan
from benchmarks.scaling.postgres import Databases
from benchmarks.scaling.profile import summarize
from benchmarks.scaling.servers import ROOT, ServerConfig, ServerProcess


@dataclass
class Context:
    """What every phase needs: the plan, a scratch folder, PostgreSQL, the time budget."""

    plan: Plan
    workdir: Path
    databases: Databases | None
    deadline: float
    log: Callable[[str], None]
    profile_dir: Path | None = None
    profile_rate: float = 2000.0
    skipped: list[str] = field(default_factory=list)

    def out_of_time(self, what: str) -> bool:
        """True (and noted) when the budget is spent: ``what`` is skipped."""
        if time.monotonic() < self.deadline:
            return False
        self.skipped.append(what)
        self.log(f"  skipped (time budget spent): {what}")
        return True


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _load_errors(data: dict[str, Any]) -> dict[str, Any]:
    messages, connections = data["messages"], data["connections"]
    return {
        "call_errors": int(messages["call_errors"]), "timeouts": int(messages["timeouts"]),
        "dropped": int(messages["dropped"]), "lost": int(messages["lost"]),
        "connect_errors": int(connections["connect_errors"]),
        "handshake_timeouts": int(connections["handshake_timeouts"]),
        "refused": dict(connections["refused"]),
        "disconnects": int(connections["disconnects"]),
    }


# ---------------------------------------------------------------------- fixed-rate ladder


def rate_step(result: LoadResult, rate: float, plan: Plan) -> dict[str, Any]:
    """The figures of one step of the ladder."""
    step: dict[str, Any] = {"target_per_s": rate, "loadavg": procs.loadavg()}
    error = result.error()
    if error is not None or result.data is None:
        step["error"] = error
        step["held"] = False
        return step
    data = result.data
    achieved = data["rate"]["achieved_per_s"] or 0.0
    latency = data["latency"]
    window = steady(result)
    step.update({
        "achieved_per_s": achieved,
        "p50_ms": _ms(latency["p50_s"]),
        "p99_ms": _ms(latency["p99_s"]),
        "max_ms": _ms(latency["max_s"]),
        "answered": int(data["messages"]["results"]) + int(data["messages"]["call_errors"]),
        "booted": int(data["connections"]["ever_booted"]),
        "cpu_us_per_msg": window["cpu_us_per_msg"] if window else whole_run_cpu(result),
        "window": window,
        "errors": _load_errors(data),
        "loadgen_processes": result.spec.processes,
    })
    p99 = latency["p99_s"]
    step["held"] = bool(
        step["booted"] == result.spec.count and p99 is not None and p99 <= plan.max_p99
        and achieved >= 0.95 * rate)
    step["overloaded"] = bool(
        p99 is None or p99 > plan.stop_p99 or achieved < plan.min_achieved * rate)
    return step


def ladder_summary(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """Held rate (highest target kept with p99 under the limit), capacity (highest rate
    achieved at any step), CPU per message at the first step."""
    good = [s for s in steps if "error" not in s]
    held_steps = [s for s in good if s["held"]]
    return {
        "held_per_s": max((s["target_per_s"] for s in held_steps), default=None),
        "held_p99_ms": max(held_steps, key=lambda s: s["target_per_s"])["p99_ms"]
        if held_steps else None,
        "capacity_per_s": max((s["achieved_per_s"] for s in good), default=None),
        "cpu_us_per_msg": good[0]["cpu_us_per_msg"] if good else None,
        "cpu_at_per_s": good[0]["target_per_s"] if good else None,
    }


def ladder(ctx: Context, config: ServerConfig) -> dict[str, Any]:
    """Climb the fixed rates until the server cannot keep up. Each step runs on a fresh server
    (new data folder or database): a step must not inherit the work the previous one left
    behind (every charger of the previous step disconnecting at its end)."""
    plan = ctx.plan
    out: dict[str, Any] = {"label": config.label, "chargers": plan.ladder_chargers,
                           "step_seconds": plan.step_seconds,
                           "warmup_seconds": plan.warmup_seconds, "steps": []}
    ctx.log(f"throughput: {config.label}")
    for rate in plan.rates:
        if ctx.out_of_time(f"throughput {config.name} {rate:g}/s"):
            break
        spec = LoadSpec(count=plan.ladder_chargers, rate=rate, duration=plan.step_seconds,
                        warmup=plan.warmup_seconds,
                        boot_timeout=plan.boot_timeout, max_handshakes=plan.connect_cap,
                        processes=2 if rate >= plan.split_rate else 1)
        try:
            with ServerProcess(config, ctx.workdir, ctx.databases) as server:
                step = rate_step(run_load(server, spec, ctx.workdir), rate, plan)
                if not server.alive():
                    step["error"] = f"server died: {server.log_tail()}"
        except RuntimeError as exc:
            step = {"target_per_s": rate, "loadavg": procs.loadavg(), "held": False,
                    "error": str(exc)}
        out["steps"].append(step)
        ctx.log("  " + _step_line(step))
        if step.get("error") or step["overloaded"]:
            break
    if ctx.profile_dir is not None and config.ours and not ctx.out_of_time(
            f"profile {config.name}"):
        try:
            with ServerProcess(config, ctx.workdir, ctx.databases) as server:
                out["profile"] = profile(ctx, server)
        except RuntimeError as exc:
            out["profile"] = {"error": str(exc)}
    out["summary"] = ladder_summary(out["steps"])
    return out


def _step_line(step: dict[str, Any]) -> str:
    if "error" in step:
        return f"{step['target_per_s']:>7g}/s: error {step['error']}"
    return (f"{step['target_per_s']:>7g}/s: achieved {step['achieved_per_s']:.0f}/s "
            f"p50 {step['p50_ms']} ms p99 {step['p99_ms']} ms "
            f"CPU {step['cpu_us_per_msg']} µs/msg load {step['loadavg']:.2f}")


# ---------------------------------------------------------------------- profile


def profile(ctx: Context, server: ServerProcess) -> dict[str, Any]:
    """One more fixed-rate run at ``profile_rate`` with py-spy recording the server (its
    workers too); the raw stacks are kept in ``profile_dir`` and summarised."""
    assert ctx.profile_dir is not None
    plan = ctx.plan
    py_spy = Path(sys.executable).parent / "py-spy"
    ctx.profile_dir.mkdir(parents=True, exist_ok=True)
    raw = ctx.profile_dir / f"{server.config.name}-{ctx.profile_rate:g}.txt"
    duration = max(plan.step_seconds, 12.0)
    seconds = int(duration) - 2
    recorders: list[subprocess.Popen[bytes]] = []
    lock = threading.Lock()

    def record() -> None:
        command = [str(py_spy), "record", "-p", str(server.pid), "-d", str(seconds),
                   "--format", "raw", "-o", str(raw), "--nonblocking"]
        if server.config.workers > 1:
            command.append("--subprocesses")
        with lock:
            recorders.append(subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                              stderr=subprocess.DEVNULL))

    spec = LoadSpec(count=plan.ladder_chargers, rate=ctx.profile_rate,
                    duration=duration, warmup=plan.warmup_seconds, boot_timeout=plan.boot_timeout,
                    max_handshakes=plan.connect_cap,
                    processes=2 if ctx.profile_rate >= plan.split_rate else 1)
    result = run_load(server, spec, ctx.workdir, on_booted=record)
    for recorder in recorders:
        try:
            recorder.wait(30)
        except subprocess.TimeoutExpired:
            recorder.kill()
    out: dict[str, Any] = {"rate_per_s": ctx.profile_rate, "raw": str(raw),
                           "step": rate_step(result, ctx.profile_rate, plan)}
    if raw.exists():
        out.update(summarize(raw.read_text()))
    else:
        out["error"] = "py-spy wrote nothing (is ptrace allowed?)"
    return out


# ---------------------------------------------------------------------- connections


def connection_run(ctx: Context, run: ConnectionRun) -> dict[str, Any]:
    """A fresh server; ``count`` chargers at once; memory after a quiet hold; with ``storm``
    a reconnect storm."""
    plan = ctx.plan
    config = run.config
    out: dict[str, Any] = {"server": config.name, "label": config.label, "chargers": run.count,
                           "storm": run.storm, "loadgen_processes": run.processes,
                           "connect_cap": plan.connect_cap,
                           "timeout_s": plan.connect_timeout if run.storm else plan.hold_timeout,
                           "hold_timeout_s": plan.hold_timeout}
    ctx.log(f"connections: {config.label}, {run.count} chargers"
            + (", reconnect storm" if run.storm else ""))
    spec = LoadSpec(count=run.count, duration=plan.hold_seconds, processes=run.processes,
                    reconnect_storm=run.storm, boot_timeout=plan.hold_timeout,
                    storm_timeout=plan.connect_timeout, max_handshakes=plan.connect_cap)
    try:
        with ServerProcess(config, ctx.workdir, ctx.databases) as server:
            out["idle_rss_bytes"] = server.idle_rss
            out["loadavg"] = procs.loadavg()
            result = run_load(server, spec, ctx.workdir)
            if not server.alive():
                out["error"] = f"server died: {server.log_tail()}"
    except RuntimeError as exc:
        out["error"] = str(exc)
        ctx.log(f"  error: {exc}")
        return out
    error = result.error()
    if error is not None or result.data is None:
        out["error"] = error
        ctx.log(f"  error: {error}")
        return out
    data = result.data
    sample, connected = held(result)
    out["booted"] = int(data["connections"]["ever_booted"])
    out["connected_in_hold"] = connected
    out["held"] = connected == run.count
    if sample is not None and connected > 0:
        out["rss_bytes"] = sample.server_rss
        out["per_connection_bytes"] = round(
            max(0, sample.server_rss - out["idle_rss_bytes"]) / connected)
    boot = data["boot"]
    out["connect"] = {
        "all_booted_s": data["connections"]["all_booted_after_s"],
        "p50_ms": _ms(boot["p50_s"]), "p99_ms": _ms(boot["p99_s"]),
    }
    if run.storm:
        storm = data["storm_boot"]
        out["reconnect_storm"] = {
            "all_booted_s": data["reconnect_storm"]["all_booted_after_s"],
            "booted": storm["count"],
            "p50_ms": _ms(storm["p50_s"]), "p99_ms": _ms(storm["p99_s"]),
        }
    out["errors"] = _load_errors(data)
    out["loadgen_messages"] = result.messages[-5:]
    per = out.get("per_connection_bytes")
    storm_s = out.get("reconnect_storm", {}).get("all_booted_s")
    ctx.log(f"  booted {out['booted']}/{run.count} in {_round(out['connect']['all_booted_s'])} s"
            f", held {connected}, {_round(None if per is None else per / 1024)} KiB/connection"
            + (f", reconnect storm all booted after {_round(storm_s)} s" if run.storm else ""))
    return out


# ---------------------------------------------------------------------- engine


def engine(ctx: Context) -> dict[str, Any]:
    """``benchmarks/engine_throughput.py``: events/s through the diagnostics engine, by the
    wall clock and per CPU second of the process (the machine may be shared: the CPU figure
    is what a core of its own does)."""
    plan = ctx.plan
    path = ROOT / "benchmarks" / "engine_throughput.py"
    spec = importlib.util.spec_from_file_location("engine_throughput", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    ctx.log(f"engine: {plan.engine_events} events x {plan.engine_repeat}")
    rates, cpu_rates = [], []
    events = 0
    for _ in range(plan.engine_repeat):
        rate, events, _commands, _actions, cpu_rate = module.measure(2000, plan.engine_events, 7)
        rates.append(rate)
        cpu_rates.append(cpu_rate)
    out = {"stations": 2000, "events": events, "runs_per_s": [round(r) for r in rates],
           "events_per_s": round(max(rates)), "events_per_cpu_s": round(max(cpu_rates)),
           "loadavg": procs.loadavg()}
    ctx.log(f"  {out['events_per_s']:,} events/s, {out['events_per_cpu_s']:,} per CPU second")
    return out
