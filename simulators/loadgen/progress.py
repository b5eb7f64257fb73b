"""The live status line on stderr, and the final summary."""

from __future__ import annotations

from typing import Any, TextIO

from simulators.loadgen import kinds
from simulators.loadgen.histogram import Histogram
from simulators.loadgen.stats import Stats


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.2f}ms"


def _s(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.3f}s"


def status_line(snap: dict[str, Any]) -> str:
    """One line from a progress snapshot (:meth:`LoadFleet.progress`)."""
    return (
        f"[{snap['elapsed']:7.1f}s] connected {snap['connected']}/{snap['chargers']} "
        f"booted {snap['booted']} (ever {snap['ever_booted']}) calls {snap['calls']} "
        f"({snap['per_s']:.0f}/s) p99 {_ms(snap['p99'])} errors {snap['errors']} "
        f"timeouts {snap['timeouts']} dropped {snap['dropped']} refused {snap['refused']} "
        f"reconnects {snap['reconnects']}"
    )


def combine(snaps: list[dict[str, Any]]) -> dict[str, Any]:
    """The snapshots of several processes as one (sums; the worst p99; the longest time)."""
    out: dict[str, Any] = {"elapsed": max(s["elapsed"] for s in snaps)}
    for key in ("chargers", "connected", "booted", "ever_booted", "calls", "answered", "per_s",
                "errors", "timeouts", "dropped", "refused", "reconnects"):
        out[key] = sum(s[key] for s in snaps)
    p99s = [s["p99"] for s in snaps if s["p99"] is not None]
    out["p99"] = max(p99s) if p99s else None
    return out


class StatusLine:
    """Writes status lines: rewritten in place on a terminal, one per update otherwise."""

    def __init__(self, stream: TextIO, *, tty: bool) -> None:
        self.stream = stream
        self.tty = tty
        self._written = False

    def __call__(self, snap: dict[str, Any]) -> None:
        line = status_line(snap)
        if self.tty:
            self.stream.write("\r" + line + "\x1b[K")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        self._written = True

    def finish(self) -> None:
        """End the line on a terminal."""
        if self.tty and self._written:
            self.stream.write("\n")
            self.stream.flush()


def _hist(name: str, hist: Histogram) -> str:
    return (f"{name}: n {hist.count} p50 {_ms(hist.quantile(0.5))} "
            f"p90 {_ms(hist.quantile(0.9))} p99 {_ms(hist.quantile(0.99))} "
            f"p99.9 {_ms(hist.quantile(0.999))} max {_ms(hist.quantile(1.0))}")


def summary(stats: Stats) -> str:
    """A few human-readable lines about a finished run."""
    per_charger = stats.rss_per_charger
    memory = "-" if per_charger is None else f"{per_charger / 1024:.1f} KiB"
    per_frame = stats.to_dict(buckets=False)["cpu"]["per_frame_us"]
    cpu = "" if per_frame is None else f" ({per_frame:.0f} µs per frame)"
    by_action = "".join(
        f"  {name}: n {hist.count} p50 {_ms(hist.quantile(0.5))} p99 {_ms(hist.quantile(0.99))}\n"
        for name, hist in zip(kinds.NAMES, stats.latency_by_kind, strict=True) if hist.count
    )
    storm = ""
    if stats.storm_boot.count:
        storm = (f"reconnect storm: all booted again after "
                 f"{_s(stats.storm_all_booted_after)}; {_hist('storm boot', stats.storm_boot)}\n")
    rate = ""
    if stats.rate_target:
        achieved = stats.rate_calls / stats.rate_duration if stats.rate_duration else 0.0
        rate = (f"fixed rate: target {stats.rate_target:.0f}/s achieved {achieved:.0f}/s "
                f"over {stats.rate_duration:.1f}s\n")
    return (
        f"chargers {stats.chargers} in {stats.processes} process(es), loop {stats.loop}, "
        f"{stats.elapsed:.1f}s\n"
        f"connect: booted {stats.ever_booted}/{stats.chargers}, all booted after "
        f"{_s(stats.all_booted_after)}, attempts {stats.connect_attempts}, "
        f"errors {stats.connect_errors}, handshake timeouts {stats.handshake_timeouts}, "
        f"refused {stats.refused or 0}, reconnects {stats.reconnects}\n"
        f"{_hist('boot', stats.boot)}\n"
        f"calls: sent {stats.calls_sent} ({stats.calls_per_s:.0f}/s), answered "
        f"{stats.results}, call errors {stats.call_errors_by_code or 0}, timeouts "
        f"{stats.timeouts}, dropped {stats.dropped}, CSMS calls {stats.csms_calls}\n"
        f"{rate}"
        f"{_hist('latency', stats.latency)}\n"
        f"{by_action}"
        f"{storm}"
        f"memory: {memory} per charger (RSS {stats.rss_connected / 2**20:.0f} MiB, "
        f"baseline {stats.rss_baseline / 2**20:.0f} MiB); CPU {stats.cpu_seconds:.1f}s"
        f"{cpu}"
    )
