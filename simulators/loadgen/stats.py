"""Counters and histograms of a load run (:class:`Stats`), JSON-serialisable and mergeable."""

from __future__ import annotations

import resource
import sys
from typing import Any

from simulators.loadgen import kinds
from simulators.loadgen.histogram import Histogram

#: Summed counters, by group of the JSON output.
COUNTERS: dict[str, tuple[str, ...]] = {
    "connections": (
        "chargers", "connected", "booted", "ever_booted", "connect_attempts", "connect_errors",
        "handshake_timeouts", "disconnects", "reconnects", "boots", "boots_not_accepted",
        "resets",
    ),
    "messages": (
        "calls_sent", "results", "call_errors", "timeouts", "late", "dropped", "unsent",
        "lost", "csms_calls", "csms_not_implemented", "bad_frames", "pings",
    ),
}
#: Counters by key (summed key by key).
KEYED = ("refused", "call_errors_by_code", "csms_calls_by_action", "sent_by_action")
HISTOGRAMS = ("latency", "service", "boot", "handshake", "storm_boot")


def rss_bytes() -> tuple[int, int]:
    """(current, peak) resident set size of this process in bytes."""
    current = peak = 0
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    current = int(line.split()[1]) * 1024
                elif line.startswith("VmHWM:"):
                    peak = int(line.split()[1]) * 1024
    except OSError:
        pass
    if not peak:
        scale = 1 if sys.platform == "darwin" else 1024
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    return current or peak, peak


class Stats:
    """What a load run measured.

    Histograms (seconds): ``latency`` CALL due → answer (in fixed-rate mode the time the
    dispatcher scheduled it, so a slow server cannot hide its backlog: no coordinated
    omission; only CALLs due in the rate phase are counted there), ``service`` CALL written
    → answer (same CALLs), ``boot`` connect requested → BootNotification accepted (every
    boot, reconnects too), ``handshake`` TCP connect → HTTP 101, ``storm_boot`` the same as
    ``boot`` for the reconnect storm (every connection dropped, all reconnecting at once).
    """

    def __init__(self, chargers: int = 0) -> None:
        for group in COUNTERS.values():
            for name in group:
                setattr(self, name, 0)
        self.chargers = chargers
        self.refused: dict[str, int] = {}
        self.call_errors_by_code: dict[str, int] = {}
        self.csms_calls_by_action: dict[str, int] = {}
        self.sent_by_kind = [0] * kinds.COUNT
        self.latency = Histogram()
        self.latency_by_kind = [Histogram() for _ in kinds.NAMES]
        """``latency`` by message (:data:`simulators.loadgen.kinds.NAMES`)."""
        self.service = Histogram()
        self.boot = Histogram()
        self.handshake = Histogram()
        self.storm_boot = Histogram()
        self.storm_all_booted_after: float | None = None
        self.processes = 1
        self.loop = "asyncio"
        self.elapsed = 0.0
        self.all_booted_after: float | None = None
        self.rate_target = 0.0
        self.rate_duration = 0.0
        self.rate_calls = 0
        """CALLs due in the rate phase and sent (the rate achieved is this / rate_duration)."""
        self.rss_baseline = 0
        self.rss_connected = 0
        self.rss_peak = 0
        self.cpu_seconds = 0.0
        """CPU time (user + system) of the load generator during the run."""

    # Counter attributes are created in __init__ from COUNTERS; declared for type checkers.
    chargers: int
    connected: int
    booted: int
    ever_booted: int
    connect_attempts: int
    connect_errors: int
    handshake_timeouts: int
    disconnects: int
    reconnects: int
    boots: int
    boots_not_accepted: int
    resets: int
    calls_sent: int
    results: int
    call_errors: int
    timeouts: int
    late: int
    dropped: int
    unsent: int
    lost: int
    csms_calls: int
    csms_not_implemented: int
    bad_frames: int
    pings: int

    @property
    def sent_by_action(self) -> dict[str, int]:
        """CALLs sent by message (see :data:`simulators.loadgen.kinds.NAMES`)."""
        return {name: n for name, n in zip(kinds.NAMES, self.sent_by_kind, strict=True) if n}

    @property
    def in_flight(self) -> int:
        """CALLs sent and neither answered nor given up."""
        return max(0, self.calls_sent - self.results - self.call_errors - self.timeouts
                   - self.lost)

    @property
    def calls_per_s(self) -> float:
        """CALLs sent per second over the whole run."""
        return self.calls_sent / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def rss_per_charger(self) -> float | None:
        """Bytes of resident memory per charger, connected (all processes)."""
        if not self.chargers or not self.rss_connected:
            return None
        return max(0, self.rss_connected - self.rss_baseline) / self.chargers

    def keyed(self, name: str) -> dict[str, int]:
        """One of the counters by key (:data:`KEYED`)."""
        if name == "sent_by_action":
            return self.sent_by_action
        value: dict[str, int] = getattr(self, name)
        return value

    # ------------------------------------------------------------------ (de)serialising

    def to_dict(self, *, buckets: bool = True) -> dict[str, Any]:
        """Everything as JSON-compatible data (times in seconds, memory in bytes)."""
        out: dict[str, Any] = {
            "chargers": self.chargers,
            "processes": self.processes,
            "loop": self.loop,
            "elapsed_s": round(self.elapsed, 6),
            "calls_per_s": round(self.calls_per_s, 3),
        }
        for group, names in COUNTERS.items():
            out[group] = {name: getattr(self, name) for name in names}
        out["connections"]["all_booted_after_s"] = self.all_booted_after
        out["connections"]["refused"] = dict(self.refused)
        out["messages"]["in_flight"] = self.in_flight
        for name in ("call_errors_by_code", "csms_calls_by_action", "sent_by_action"):
            out["messages"][name] = dict(self.keyed(name))
        out["rate"] = {
            "target_per_s": self.rate_target,
            "duration_s": round(self.rate_duration, 6),
            "calls": self.rate_calls,
            "achieved_per_s": round(self.rate_calls / self.rate_duration, 3)
            if self.rate_duration > 0 else None,
        }
        out["reconnect_storm"] = {"all_booted_after_s": self.storm_all_booted_after}
        out["latency_by_action"] = {
            name: hist.to_dict(buckets=buckets)
            for name, hist in zip(kinds.NAMES, self.latency_by_kind, strict=True) if hist.count
        }
        for name in HISTOGRAMS:
            hist: Histogram = getattr(self, name)
            out[name] = hist.to_dict(buckets=buckets)
        out["memory"] = {
            "rss_baseline_bytes": self.rss_baseline,
            "rss_connected_bytes": self.rss_connected,
            "rss_peak_bytes": self.rss_peak,
            "rss_per_charger_bytes": round(self.rss_per_charger)
            if self.rss_per_charger is not None else None,
        }
        frames = self.calls_sent + self.results + self.call_errors + 2 * self.csms_calls
        out["cpu"] = {
            "seconds": round(self.cpu_seconds, 6),
            "per_frame_us": round(self.cpu_seconds / frames * 1e6, 3) if frames else None,
        }
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Stats:
        """Rebuild from :meth:`to_dict` output (histograms need their buckets)."""
        stats = cls()
        stats.chargers = int(data["chargers"])
        stats.processes = int(data.get("processes", 1))
        stats.loop = str(data.get("loop", "asyncio"))
        stats.elapsed = float(data.get("elapsed_s", 0.0))
        for group, names in COUNTERS.items():
            for name in names:
                setattr(stats, name, int(data[group][name]))
        connections, messages = data["connections"], data["messages"]
        stats.all_booted_after = connections.get("all_booted_after_s")
        stats.refused = dict(connections.get("refused", {}))
        stats.call_errors_by_code = dict(messages.get("call_errors_by_code", {}))
        stats.csms_calls_by_action = dict(messages.get("csms_calls_by_action", {}))
        sent = messages.get("sent_by_action", {})
        stats.sent_by_kind = [int(sent.get(name, 0)) for name in kinds.NAMES]
        rate = data.get("rate", {})
        stats.rate_target = float(rate.get("target_per_s", 0.0))
        stats.rate_duration = float(rate.get("duration_s", 0.0))
        stats.rate_calls = int(rate.get("calls", 0))
        for name in HISTOGRAMS:
            setattr(stats, name, Histogram.from_dict(data[name]))
        stats.storm_all_booted_after = data.get("reconnect_storm", {}).get("all_booted_after_s")
        by_action = data.get("latency_by_action", {})
        stats.latency_by_kind = [
            Histogram.from_dict(by_action[name]) if name in by_action else Histogram()
            for name in kinds.NAMES
        ]
        memory = data.get("memory", {})
        stats.rss_baseline = int(memory.get("rss_baseline_bytes", 0))
        stats.rss_connected = int(memory.get("rss_connected_bytes", 0))
        stats.rss_peak = int(memory.get("rss_peak_bytes", 0))
        stats.cpu_seconds = float(data.get("cpu", {}).get("seconds", 0.0))
        return stats

    @classmethod
    def combine(cls, parts: list[Stats]) -> Stats:
        """The stats of several processes as one: counters, histograms and memory add up,
        durations take the longest, ``all_booted_after`` the latest (None if one never got
        there)."""
        total = cls()
        total.processes = 0
        for part in parts:
            for names in COUNTERS.values():
                for name in names:
                    setattr(total, name, getattr(total, name) + getattr(part, name))
            total.processes += part.processes
            for name in ("refused", "call_errors_by_code", "csms_calls_by_action"):
                mine: dict[str, int] = getattr(total, name)
                for key, n in getattr(part, name).items():
                    mine[key] = mine.get(key, 0) + n
            total.sent_by_kind = [a + b for a, b in zip(total.sent_by_kind, part.sent_by_kind,
                                                        strict=True)]
            for name in HISTOGRAMS:
                getattr(total, name).merge(getattr(part, name))
            for mine_hist, theirs in zip(total.latency_by_kind, part.latency_by_kind,
                                         strict=True):
                mine_hist.merge(theirs)
            total.loop = part.loop
            total.elapsed = max(total.elapsed, part.elapsed)
            total.rate_target += part.rate_target
            total.rate_duration = max(total.rate_duration, part.rate_duration)
            total.rate_calls += part.rate_calls
            total.rss_baseline += part.rss_baseline
            total.rss_connected += part.rss_connected
            total.rss_peak += part.rss_peak
            total.cpu_seconds += part.cpu_seconds
        total.all_booted_after = _latest([part.all_booted_after for part in parts])
        total.storm_all_booted_after = _latest([part.storm_all_booted_after for part in parts])
        return total

    def line(self) -> str:
        """A one-line human summary."""
        p50, p99 = self.latency.quantile(0.5), self.latency.quantile(0.99)
        return (
            f"chargers {self.chargers} connected {self.connected} booted {self.booted} "
            f"(ever {self.ever_booted}) calls {self.calls_sent} answered "
            f"{self.results + self.call_errors} ({self.calls_per_s:.0f}/s) "
            f"p50 {_ms(p50)} p99 {_ms(p99)} errors {self.call_errors} "
            f"timeouts {self.timeouts} dropped {self.dropped} refused "
            f"{sum(self.refused.values())} reconnects {self.reconnects}"
        )


def _latest(times: list[float | None]) -> float | None:
    """The latest of the processes' times; None if one of them never got there."""
    return max(t for t in times if t is not None) if times and None not in times else None


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.2f}ms"
