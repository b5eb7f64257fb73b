"""One run of the load generator (``python -m simulators.loadgen``) against a server process.

The generator runs as its own process (``--processes N`` for more, as one process cannot hold
more sockets than its open-files limit) and writes its stats with ``--json``. Its progress
lines on stderr (one a second) tell when every charger booted and how many CALLs went out by
then, so that the server's CPU time can be read over the steady part of the rate phase only
(no handshakes, no drain), from the :class:`~benchmarks.scaling.procs.Sampler` readings.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.scaling import procs
from benchmarks.scaling.servers import ROOT, ServerProcess

PROGRESS = re.compile(
    r"\[\s*(?P<elapsed>[\d.]+)s\] connected (?P<connected>\d+)/(?P<chargers>\d+) "
    r"booted (?P<booted>\d+) \(ever (?P<ever>\d+)\) calls (?P<calls>\d+) .*?"
    r"errors (?P<errors>\d+) timeouts (?P<timeouts>\d+) dropped (?P<dropped>\d+) "
    r"refused (?P<refused>\d+) reconnects (?P<reconnects>\d+)")
SPAWN_MARGIN = 45.0
"""Seconds allowed on top of the generator's own bounds (start-up, spawn, closing)."""


@dataclass(frozen=True)
class LoadSpec:
    """What the load generator is asked to do."""

    count: int
    duration: float
    """Seconds of traffic (fixed-rate phase, or the quiet hold of a memory run)."""
    rate: float = 0.0
    """CALLs/s, realistic mix (0: a quiet hold: heartbeats every 300 s, nothing else)."""
    processes: int = 1
    reconnect_storm: bool = False
    boot_timeout: float = 60.0
    warmup: float = 0.0
    """Seconds at the start of the rate phase not measured (latency, rate, CPU)."""
    storm_timeout: float | None = None
    """Longest wait for the reconnect storm (default ``boot_timeout``)."""
    max_handshakes: int = 0
    """Handshakes in flight while first connecting (0: all at once); the reconnect storm is
    never capped."""
    id_prefix: str = "BENCH-"

    def arguments(self, url: str, echo: bool, json_path: Path) -> list[str]:
        """The generator's command-line options."""
        args = ["--url", url, "--count", str(self.count), "--mix", "0.5",
                "--id-prefix", self.id_prefix, "--connect", "storm",
                "--duration", f"{self.duration:g}", "--boot-timeout", f"{self.boot_timeout:g}",
                "--processes", str(self.processes), "--json", str(json_path), "--progress"]
        if self.rate > 0:
            args += ["--rate", f"{self.rate:g}", "--warmup", f"{self.warmup:g}"]
        else:
            args += ["--heartbeat-interval", "300", "--status-interval", "0", "--no-sessions"]
        if self.max_handshakes > 0:
            args += ["--max-handshakes", str(self.max_handshakes)]
        if self.reconnect_storm:
            args.append("--reconnect-storm")
            if self.storm_timeout is not None:
                args += ["--storm-timeout", f"{self.storm_timeout:g}"]
        if echo:
            args.append("--echo")
        return args

    @property
    def bound(self) -> float:
        """Longest the run may take before it is stopped."""
        storm = (self.storm_timeout or self.boot_timeout) if self.reconnect_storm else 0.0
        return self.boot_timeout + storm + self.duration + SPAWN_MARGIN


@dataclass(frozen=True)
class Snapshot:
    """One progress line, with the (monotonic) time it was read."""

    t: float
    elapsed: float
    connected: int
    chargers: int
    ever: int
    calls: int


@dataclass
class LoadResult:
    """What a run produced: the generator's JSON, its progress, the process readings."""

    spec: LoadSpec
    data: dict[str, Any] | None
    snaps: list[Snapshot]
    samples: list[procs.Sample]
    exit_code: int | None
    started: float
    messages: list[str] = field(default_factory=list)
    """Other stderr lines of the generator (warnings, errors)."""

    @property
    def offset(self) -> float:
        """Monotonic time of the generator's own time 0 (its progress ``elapsed``)."""
        if self.snaps:
            return min(s.t - s.elapsed for s in self.snaps)
        return self.started + 0.5

    @property
    def booted_at(self) -> float | None:
        """Monotonic time every charger had booted (the rate phase starts then)."""
        after = (self.data or {}).get("connections", {}).get("all_booted_after_s")
        if after is None:
            return None
        return self.offset + float(after)

    def error(self) -> str | None:
        """Why the run gave no figures, if it did not."""
        if self.data is None:
            tail = " | ".join(self.messages[-3:])
            return f"load generator wrote no stats (exit {self.exit_code}) {tail}".strip()
        return None


def interpolate(samples: list[procs.Sample], t: float) -> procs.Sample:
    """The readings at time ``t``, linearly between the two samples around it."""
    if t <= samples[0].t:
        return samples[0]
    for before, after in itertools.pairwise(samples):
        if before.t <= t <= after.t:
            span = after.t - before.t
            w = (t - before.t) / span if span > 0 else 0.0

            def mix(a: float, b: float, w: float = w) -> float:
                return a + (b - a) * w

            return procs.Sample(
                t=t, server_cpu=mix(before.server_cpu, after.server_cpu),
                load_cpu=mix(before.load_cpu, after.load_cpu),
                server_rss=before.server_rss,
                machine=mix(before.machine, after.machine))
    return samples[-1]


def run_load(server: ServerProcess, spec: LoadSpec, workdir: Path,
             on_booted: Callable[[], None] | None = None) -> LoadResult:
    """Run the load generator against ``server`` (bounded by ``spec.bound``)."""
    workdir.mkdir(parents=True, exist_ok=True)
    json_path = workdir / f"load-{time.monotonic_ns()}.json"
    command = [sys.executable, "-m", "simulators.loadgen",
               *spec.arguments(server.url, server.config.echo, json_path)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env=env, cwd=ROOT, text=True, start_new_session=True)
    snaps: list[Snapshot] = []
    messages: list[str] = []
    sampler = procs.Sampler(server.pid, process.pid).start()

    def read_stderr() -> None:
        assert process.stderr is not None
        told = False
        for line in process.stderr:
            match = PROGRESS.search(line)
            if match is None:
                if line.strip():
                    messages.append(line.strip()[:300])
                continue
            snap = Snapshot(
                t=time.monotonic(), elapsed=float(match["elapsed"]),
                connected=int(match["connected"]), chargers=int(match["chargers"]),
                ever=int(match["ever"]), calls=int(match["calls"]))
            snaps.append(snap)
            if not told and snap.ever >= spec.count and on_booted is not None:
                told = True
                on_booted()

    reader = threading.Thread(target=read_stderr, name="loadgen-stderr", daemon=True)
    reader.start()
    try:
        code: int | None = process.wait(spec.bound)
    except subprocess.TimeoutExpired:
        messages.append(f"stopped after {spec.bound:.0f} s")
        code = _stop(process)
    except BaseException:  # Ctrl-C: the generator is in its own session, stop it too
        _stop(process)
        raise
    finally:
        samples = sampler.stop()
    reader.join(timeout=5)
    data = None
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(json_path.read_text())
    with contextlib.suppress(OSError):
        json_path.unlink()
    return LoadResult(spec, data, snaps, samples, code, started, messages)


def _stop(process: subprocess.Popen[str]) -> int | None:
    """SIGTERM the generator's process group (it stops cleanly), SIGKILL if it lingers."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        return process.wait(20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        return process.wait(5)


def steady(result: LoadResult) -> dict[str, Any] | None:
    """CPU and rate over the steady part of the rate phase (from the end of the warm-up, at
    least 1 s after every charger booted, to the end of the traffic): CALLs/s sent, server
    CPU µs per CALL, cores used by the server, the generator and the rest of the machine.
    None when the window is too short."""
    booted = result.booted_at
    if booted is None or not result.samples:
        return None
    begin, end = booted + max(1.0, result.spec.warmup), booted + result.spec.duration
    inside = [s for s in result.snaps if begin <= s.t <= end + 0.3]
    if len(inside) < 2 or inside[-1].t - inside[0].t < 0.9:
        return None
    first, last = inside[0], inside[-1]
    calls = last.calls - first.calls
    a = interpolate(result.samples, first.t)
    b = interpolate(result.samples, last.t)
    use = procs.usage(a, b)
    cpu = b.server_cpu - a.server_cpu
    return {
        **use,
        "calls": calls,
        "calls_per_s": round(calls / use["wall_s"], 1),
        "cpu_us_per_msg": round(cpu / calls * 1e6, 1) if calls > 0 else None,
    }


def whole_run_cpu(result: LoadResult) -> float | None:
    """Server CPU µs per CALL answered over the whole run (fallback: handshakes included)."""
    if result.data is None or len(result.samples) < 2:
        return None
    messages = result.data["messages"]
    answered = int(messages["results"]) + int(messages["call_errors"])
    cpu = result.samples[-1].server_cpu - result.samples[0].server_cpu
    return round(cpu / answered * 1e6, 1) if answered else None


def held(result: LoadResult) -> tuple[procs.Sample | None, int]:
    """The readings near the end of the hold (before the generator closes or drops the
    connections), and the chargers connected then. The hold starts once every charger booted,
    or when the generator gave up waiting (``boot_timeout``): then fewer are connected."""
    if not result.samples or not result.snaps:
        return None, 0
    booted = result.booted_at
    if booted is None:
        booted = result.offset + result.spec.boot_timeout
    at = booted + max(0.0, result.spec.duration - 0.5)
    before = [s for s in result.samples if s.t <= at]
    sample = before[-1] if before else result.samples[0]
    snaps = [s for s in result.snaps if s.t <= at + 0.5]
    connected = snaps[-1].connected if snaps else 0
    return sample, connected
