"""The printed report: one table per section, the ratios against the baselines, the targets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

KIB = 1024
MIB = 1024 * 1024
TARGET_MEMORY = 25 * KIB
"""25 KB per connection (read as KiB)."""
TARGET_RATE = 10_000
TARGET_P99_MS = 50.0
TARGET_STORM_S = 6.0
TARGET_STORM_CHARGERS = 10_000
TARGET_HOLD_CHARGERS = 20_000
TARGET_ENGINE = 100_000
BASELINES = ("plain-ocpp", "echo")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table, columns as wide as their widest cell (``None`` shows as ``-``)."""
    cells = [[str(h) for h in headers]]
    cells += [["-" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(row, widths, strict=True)))
             for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _num(value: float | None, digits: int = 0) -> str | None:
    if value is None:
        return None
    return f"{value:,.{digits}f}"


def _kib(value: float | None) -> str | None:
    return None if value is None else f"{value / KIB:.1f}"


def _mib(value: float | None) -> str | None:
    return None if value is None else f"{value / MIB:.0f}"


def _s(value: float | None) -> str | None:
    return None if value is None else f"{value:.2f}"


def _value(value: float | None) -> str | None:
    """A figure with as many decimals as it needs (``1,234``, ``12.3``, ``0.45``)."""
    if value is None:
        return None
    size = abs(value)
    return f"{value:,.0f}" if size >= 100 else f"{value:.1f}" if size >= 10 else f"{value:.2f}"


def _issues(run: dict[str, Any], keys: Sequence[str] = ("timeouts", "connect_errors",
                                                         "handshake_timeouts",
                                                         "call_errors")) -> str | None:
    """What went wrong in a run, briefly: its error, or its non-zero error counters. CALLs
    lost with their connection are not listed by default: a reconnect storm's reset loses
    the CALLs in flight by design."""
    if run.get("error"):
        return str(run["error"])[:70]
    errors = run.get("errors") or {}
    parts = []
    for key in keys:
        if errors.get(key):
            parts.append(f"{key.replace('_', ' ')} {errors[key]:,}")
    refused = errors.get("refused") or {}
    if refused:
        parts.append("handshakes refused " + ", ".join(
            f"{'closed' if k == 'lost' else k}: {v:,}" for k, v in refused.items()))
    return "; ".join(parts) or None


def _ratio(a: float | None, b: float | None) -> str | None:
    if a is None or b is None or b == 0:
        return None
    return f"{a / b:.2f}x"


# ---------------------------------------------------------------------- sections


def throughput_section(results: dict[str, Any]) -> str:
    """Every step of every ladder, then the summary per server."""
    rows: list[list[Any]] = []
    summary: list[list[Any]] = []
    for ladder in results.values():
        for step in ladder["steps"]:
            if "error" in step:
                rows.append([ladder["label"], _num(step["target_per_s"]), "error", None, None,
                             None, None, None, None, f"{step['loadavg']:.2f}", "no",
                             str(step["error"])[:60]])
                continue
            window = step.get("window") or {}
            rows.append([
                ladder["label"], _num(step["target_per_s"]), _num(step["achieved_per_s"]),
                step["p50_ms"], step["p99_ms"], step["cpu_us_per_msg"],
                window.get("server_cores"), window.get("loadgen_cores"),
                window.get("other_cores"), f"{step['loadavg']:.2f}",
                "yes" if step["held"] else "no",
                _issues(step, ("timeouts", "lost", "dropped", "call_errors", "connect_errors",
                               "handshake_timeouts"))])
        s = ladder["summary"]
        summary.append([ladder["label"], _num(s["held_per_s"]), s["held_p99_ms"],
                        _num(s["capacity_per_s"]), s["cpu_us_per_msg"],
                        _num(s.get("cpu_at_per_s"))])
    if not rows and not summary:
        return "not measured"
    first = next(iter(results.values()))
    head = (f"{first['chargers']} chargers, half OCPP 1.6 half 2.0.1, realistic mix "
            f"(heartbeat, status, session start, meter values, stop), {first['step_seconds']:g}"
            f" s per step on a fresh server (the first {first.get('warmup_seconds', 0):g} s, "
            "the server still answering the boots, not measured), climbing until p99 > 5 s or "
            "less than 80% of the rate is achieved (held: 95% achieved, p99 <= 1 s); latency "
            "from the time each CALL was due (no coordinated omission); CPU = server process "
            "tree over the steady part of the step; cores: server, load generator and the rest "
            "of the machine (other jobs)")
    return "\n".join([
        head, "",
        table(["server", "target/s", "achieved/s", "p50 ms", "p99 ms", "CPU µs/msg",
               "server cores", "loadgen cores", "other cores", "load 1m", "held", "issues"],
              rows),
        "",
        table(["server", "held up to /s (p99 <= 1 s)", "p99 ms there", "capacity msgs/s",
               "CPU µs/msg", "at /s"], summary),
    ])


def memory_section(runs: list[dict[str, Any]]) -> str:
    """Server memory per connection, per run."""
    rows = []
    for run in runs:
        if "error" in run and "rss_bytes" not in run:
            rows.append([run["label"], _num(run["chargers"]), None, None, None, None,
                         run["error"][:60]])
            continue
        issues = _issues(run)
        if not run.get("held"):
            issues = "; ".join(filter(None, [
                f"not all connected within {run.get('hold_timeout_s')} s", issues]))
        rows.append([run["label"], _num(run["chargers"]), _mib(run.get("idle_rss_bytes")),
                     _mib(run.get("rss_bytes")), _kib(run.get("per_connection_bytes")),
                     f"{run.get('connected_in_hold', 0):,}/{run['chargers']:,}", issues])
    if not rows:
        return "not measured"
    return "\n".join([
        "resident memory of the whole server (all worker processes) idle after start and "
        "with the chargers connected and booted; per connection = (RSS_n - RSS_idle) / n, "
        "n = chargers connected", "",
        table(["server", "chargers", "idle MiB", "connected MiB", "KiB/connection",
               "connected", "issues"], rows)])


def storm_section(runs: list[dict[str, Any]]) -> str:
    """First connect (unknown chargers) and reconnect storm (known chargers) per run."""
    rows = []
    cap = timeout = None
    for run in runs:
        if not run["storm"]:
            continue
        cap, timeout = run.get("connect_cap"), run.get("timeout_s")
        connect = run.get("connect", {})
        storm = run.get("reconnect_storm", {})
        all_booted = _s(storm.get("all_booted_s"))
        if all_booted is None and storm and timeout:
            all_booted = f"> {timeout:g}"
        rows.append([
            run["label"], _num(run["chargers"]), _s(connect.get("all_booted_s")),
            all_booted, storm.get("p50_ms"), storm.get("p99_ms"),
            f"{storm.get('booted', 0):,}/{run['chargers']:,}", _issues(run)])
    if not rows:
        return "not measured"
    return "\n".join([
        "reconnect storm: once every charger is connected and booted, every connection is "
        "reset at once (an outage) and all reconnect at once; time until all booted again, "
        "and per charger from its connect request to its accepted BootNotification (p50, "
        f"p99 of those that made it within {timeout if timeout is not None else '-'} s). "
        f"First connect (unknown chargers registered, at most {cap} handshakes in flight) "
        "for comparison.",
        "", table(["server", "chargers", "first connect s", "storm: all booted s",
                   "p50 ms", "p99 ms", "booted again", "issues"], rows)])


def engine_section(engine: dict[str, Any] | None) -> str:
    if not engine:
        return "not measured"
    return (f"{engine['events_per_cpu_s']:,} events per CPU second of the process; "
            f"{engine['events_per_s']:,} events/s by the wall clock (best of "
            f"{len(engine['runs_per_s'])}: {', '.join(f'{r:,}' for r in engine['runs_per_s'])}"
            f"; the wall-clock rate falls when other jobs share the CPUs); "
            f"{engine['events']:,} events, {engine['stations']} stations, realistic mix; "
            "benchmarks/engine_throughput.py")


def profile_section(throughput: dict[str, Any]) -> str | None:
    parts = []
    for name, ladder in throughput.items():
        prof = ladder.get("profile")
        if not prof:
            continue
        if "error" in prof:
            parts.append(f"{name}: {prof['error']}")
            continue
        step = prof["step"]
        parts.append(f"{ladder['label']} at {prof['rate_per_s']:g}/s (achieved "
                     f"{step.get('achieved_per_s')}/s), {prof['samples']} samples, "
                     f"raw stacks in {prof['raw']}")
        parts.append(table(["own time: function", "file", "%"],
                           [[f["function"], f["path"], f["percent"]] for f in prof["own"][:15]]))
        parts.append(table(["including callees: function", "file", "%"],
                           [[f["function"], f["path"], f["percent"]]
                            for f in prof["inclusive"][:15]]))
        parts.append(table(["own time by package", "%"],
                           [[p["package"], p["percent"]] for p in prof["packages"][:12]]))
    return "\n\n".join(parts) if parts else None


# ---------------------------------------------------------------------- ratios


def ratios(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each of our variants against the plain library and the echo server."""
    out: list[dict[str, Any]] = []
    ladders = results.get("throughput", {})
    plain, echo = ladders.get("plain-ocpp"), ladders.get("echo")

    def summary(ladder: dict[str, Any] | None, key: str) -> float | None:
        value = None if ladder is None else ladder["summary"].get(key)
        return None if value is None else float(value)

    for name, ladder in ladders.items():
        if name in BASELINES:
            continue
        for key, metric, better in (("capacity_per_s", "capacity msgs/s", "higher"),
                                    ("cpu_us_per_msg", "CPU µs per msg", "lower")):
            ours = summary(ladder, key)
            out.append({"metric": metric, "server": ladder["label"], "better": better,
                        "ours": ours, "plain": summary(plain, key), "echo": summary(echo, key)})
    runs = results.get("connections", [])
    by = {(r["server"], r["chargers"]): r for r in runs if "error" not in r}
    for run in runs:
        if run["server"] in BASELINES or "error" in run:
            continue
        n = run["chargers"]
        p, e = by.get(("plain-ocpp", n)), by.get(("echo", n))
        out.append({"metric": f"KiB per connection at {n:,}", "server": run["label"],
                    "better": "lower",
                    "ours": _per_kib(run), "plain": _per_kib(p), "echo": _per_kib(e)})
        if run["storm"]:
            ours, bound = _storm(run), False
            if ours is None and run.get("timeout_s"):
                ours, bound = float(run["timeout_s"]), True
            out.append({"metric": f"reconnect storm {n:,}: all booted s",
                        "server": run["label"], "better": "lower",
                        "ours": ours, "at_least": bound, "plain": _storm(p), "echo": _storm(e)})
    for row in out:
        sign = ">" if row.get("at_least") else ""
        plain, echo = _ratio(row["ours"], row["plain"]), _ratio(row["ours"], row["echo"])
        row["ours_vs_plain"] = plain and sign + plain
        row["ours_vs_echo"] = echo and sign + echo
    return out


def _per_kib(run: dict[str, Any] | None) -> float | None:
    if run is None or run.get("per_connection_bytes") is None:
        return None
    return round(float(run["per_connection_bytes"]) / KIB, 2)


def _storm(run: dict[str, Any] | None) -> float | None:
    if run is None or not run.get("storm"):
        return None
    value = run.get("reconnect_storm", {}).get("all_booted_s")
    return None if value is None else round(value, 3)


def ratios_section(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "not measured"
    return "\n".join([
        "ours / baseline (a ratio > 1 is better where higher is better, worse where lower is; "
        "'>' marks a lower bound: not every charger booted again within the time limit)",
        "", table(["metric", "our server", "better", "ours", "plain lib", "echo",
                   "ours/plain", "ours/echo"],
                  [[r["metric"], r["server"], r["better"],
                    (">" if r.get("at_least") else "") + (_value(r["ours"]) or "-"),
                    _value(r["plain"]), _value(r["echo"]),
                    r["ours_vs_plain"], r["ours_vs_echo"]] for r in rows])])


# ---------------------------------------------------------------------- targets


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets on PostgreSQL, each met / not met (None: not measured)."""
    out = []
    pg_runs = [r for r in results.get("connections", [])
               if r["server"].startswith("ours-postgres")]
    hold = [r for r in pg_runs if r["chargers"] >= TARGET_HOLD_CHARGERS]
    if hold:
        best = min(hold, key=lambda r: r.get("per_connection_bytes") or 1e12)
        per = best.get("per_connection_bytes")
        met = bool(best.get("held") and per is not None and per <= TARGET_MEMORY)
        figure = (f"{best.get('connected_in_hold', 0):,}/{best['chargers']:,} held, "
                  f"{_kib(per)} KiB per connection ({best['label']}, "
                  f"{_mib(best.get('rss_bytes'))} MiB in all)")
        if best.get("error"):
            figure += f"; {best['error'][:80]}"
    else:
        met, figure = None, "not measured"
    out.append({"target": "hold 20k chargers at <= 25 KB (KiB) each, PostgreSQL",
                "met": met, "figure": figure})

    steps = [(ladder["label"], s) for name, ladder in results.get("throughput", {}).items()
             if name.startswith("ours-postgres") for s in ladder["steps"] if "error" not in s]
    if steps:
        fast = [(label, s) for label, s in steps
                if s["held"] and s["p99_ms"] is not None and s["p99_ms"] < TARGET_P99_MS]
        met = any(s["target_per_s"] >= TARGET_RATE and s["achieved_per_s"]
                  >= 0.95 * s["target_per_s"] for _, s in fast)
        label, top = max(steps, key=lambda x: x[1]["achieved_per_s"])
        figure = f"capacity {top['achieved_per_s']:,.0f} msgs/s ({label}, p99 {top['p99_ms']} ms)"
        if fast:
            label, best = max(fast, key=lambda x: x[1]["target_per_s"])
            figure += (f"; highest rate held at p99 < 50 ms: {best['target_per_s']:,.0f}/s "
                       f"(p99 {best['p99_ms']} ms, {label})")
        else:
            figure += "; no rate held at p99 < 50 ms"
    else:
        met, figure = None, "not measured"
    out.append({"target": ">= 10k msgs/s realistic mix at p99 < 50 ms, PostgreSQL",
                "met": met, "figure": figure})

    storms = [r for r in pg_runs if r["chargers"] == TARGET_STORM_CHARGERS and r["storm"]
              and "reconnect_storm" in r]
    if storms:
        done = [r for r in storms if r["reconnect_storm"]["all_booted_s"] is not None]
        if done:
            best = min(done, key=lambda r: r["reconnect_storm"]["all_booted_s"])
            storm = best["reconnect_storm"]
            met = storm["all_booted_s"] < TARGET_STORM_S
            figure = (f"{storm['all_booted_s']:.2f} s ({best['label']}; per charger p50 "
                      f"{storm['p50_ms']} ms, p99 {storm['p99_ms']} ms)")
            others = [r for r in done if r is not best]
            for r in others:
                figure += f"; {r['label']}: {r['reconnect_storm']['all_booted_s']:.2f} s"
        else:
            met = False
            figure = "; ".join(f"{r['label']}: {r['reconnect_storm']['booted']:,} of "
                               f"{r['chargers']:,} booted again within the time limit"
                               for r in storms)
    else:
        met, figure = None, "not measured"
    out.append({"target": "10k-charger reconnect storm all booted in < 6 s, PostgreSQL",
                "met": met, "figure": figure})

    engine = results.get("engine")
    if engine:
        met = engine["events_per_cpu_s"] >= TARGET_ENGINE
        figure = (f"{engine['events_per_cpu_s']:,} events per CPU second "
                  f"({engine['events_per_s']:,} events/s by the wall clock, machine shared)")
    else:
        met, figure = None, "not measured"
    out.append({"target": "diagnostics engine >= 100k events/s", "met": met,
                "figure": figure})
    return out


def targets_section(rows: list[dict[str, Any]]) -> str:
    marks = {True: "met", False: "MISSED", None: "not measured"}
    lines = [table(["target", "result"], [[r["target"], marks[r["met"]]] for r in rows]), ""]
    lines += [f"- {r['target']}: {r['figure']}" for r in rows]
    return "\n".join(lines)


def _loads(results: dict[str, Any]) -> list[float]:
    """The load averages read during the phases."""
    loads = [float(step["loadavg"]) for ladder in results.get("throughput", {}).values()
             for step in ladder["steps"] if step.get("loadavg") is not None]
    loads += [float(run["loadavg"]) for run in results.get("connections", [])
              if run.get("loadavg") is not None]
    engine = results.get("engine") or {}
    if engine.get("loadavg") is not None:
        loads.append(float(engine["loadavg"]))
    return loads


def render(results: dict[str, Any]) -> str:
    """The whole printed report."""
    meta = results["meta"]
    machine = meta["machine"]
    loads = _loads(results)
    lines = [
        f"== Scaling benchmark ({meta['mode']}), {meta['started'][:19]}Z, "
        f"{meta['duration_s']:.0f} s: {machine['cpus']} CPUs, Python {machine['python']}, "
        f"our server and the plain library on asyncio, echo server and load generator on "
        f"{machine['loop']}; everything on loopback",
        f"machine load (1-minute load average, os.getloadavg): {machine['loadavg_start']:.2f} "
        f"at start, {machine['loadavg_end']:.2f} at the end"
        + (f", {min(loads):.2f}-{max(loads):.2f} during the phases" if loads else "")
        + f"; {machine['cpus']} would mean the CPUs fully busy: other jobs on the machine "
        "lower every figure (see 'other cores')",
        f"our server: {meta.get('server_settings', 'defaults')}",
    ]
    sections = [
        ("1. Throughput at fixed rates", throughput_section(results.get("throughput", {}))),
        ("2. Server memory per connection", memory_section(results.get("connections", []))),
        ("3. Connect and reconnect storms", storm_section(results.get("connections", []))),
        ("4. Diagnostics engine", engine_section(results.get("engine"))),
        ("5. Ratios against the baselines", ratios_section(results.get("ratios", []))),
        ("6. Targets", targets_section(results.get("targets", []))),
    ]
    profile = profile_section(results.get("throughput", {}))
    if profile:
        sections.append(("Profile (py-spy)", profile))
    for title, body in sections:
        lines += ["", f"== {title}", body]
    if meta.get("notes"):
        lines += ["", "notes: " + "; ".join(meta["notes"])]
    if results.get("skipped"):
        lines += ["", "skipped (time budget): " + ", ".join(results["skipped"])]
    if meta.get("json"):
        lines += ["", f"figures written to {meta['json']}"]
    return "\n".join(lines)
