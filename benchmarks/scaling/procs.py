"""CPU time and resident memory of process trees, read from /proc (Linux), sampled in a thread.

A server is measured as its whole process tree (``csms serve --workers N`` is a supervisor and
N workers): CPU = user + system time of every live process of the tree, memory = the sum of
their resident sets. The machine's busy time (all processes, from /proc/stat) is sampled too,
so a phase can say how much CPU the rest of the machine (other jobs) took while it ran.
"""

from __future__ import annotations

import bisect
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class ProcInfo:
    """One process: its parent and CPU seconds so far."""

    ppid: int
    cpu: float


def scan() -> dict[int, ProcInfo]:
    """Every process of the machine: pid → parent and CPU time (one pass over /proc)."""
    out: dict[int, ProcInfo] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(entry.path, "stat").read_bytes()
        except OSError:
            continue
        fields = raw.rsplit(b")", 1)[1].split()
        out[int(entry.name)] = ProcInfo(int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS)
    return out


def tree(root: int, procs: dict[int, ProcInfo]) -> list[int]:
    """``root`` and all its descendants that are alive in ``procs``."""
    if root not in procs:
        return []
    children: dict[int, list[int]] = {}
    for pid, info in procs.items():
        children.setdefault(info.ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def rss_bytes(pids: list[int]) -> int:
    """Sum of the resident set sizes of ``pids`` (bytes; vanished processes count 0)."""
    total = 0
    for pid in pids:
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            continue
    return total


def machine_busy() -> float:
    """CPU seconds the whole machine spent busy since boot (all cores, /proc/stat)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / TICKS


def loadavg() -> float:
    """The 1-minute load average."""
    return float(Path("/proc/loadavg").read_text().split()[0])


@dataclass(frozen=True)
class Sample:
    """One reading: monotonic time, CPU seconds of the server tree and of the load generator
    tree, the server tree's resident memory, the machine's busy seconds."""

    t: float
    server_cpu: float
    load_cpu: float
    server_rss: int
    machine: float


def read(server: int, load: int | None) -> Sample:
    """A :class:`Sample` now."""
    t = time.monotonic()
    procs = scan()
    server_pids = tree(server, procs)
    load_pids = tree(load, procs) if load is not None else []
    return Sample(
        t=t,
        server_cpu=sum(procs[p].cpu for p in server_pids),
        load_cpu=sum(procs[p].cpu for p in load_pids),
        server_rss=rss_bytes(server_pids),
        machine=machine_busy(),
    )


class Sampler:
    """Samples a server tree (and a load generator tree) every ``interval`` seconds in a
    thread, from :meth:`start` to :meth:`stop`."""

    def __init__(self, server: int, load: int | None = None, interval: float = 0.25) -> None:
        self.server = server
        self.load = load
        self.interval = interval
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)

    def start(self) -> Sampler:
        self.samples.append(read(self.server, self.load))
        self._thread.start()
        return self

    def stop(self) -> list[Sample]:
        self._stop.set()
        self._thread.join(timeout=5)
        self.samples.append(read(self.server, self.load))
        return self.samples

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.samples.append(read(self.server, self.load))

    def at(self, t: float) -> Sample:
        """The sample closest to time ``t`` (at or before it when there is one)."""
        times = [s.t for s in self.samples]
        index = bisect.bisect_right(times, t) - 1
        return self.samples[max(0, index)]


def usage(first: Sample, last: Sample) -> dict[str, float]:
    """Cores used between two samples: by the server, the load generator and everything else
    on the machine (other jobs), and the wall time between them."""
    wall = max(1e-9, last.t - first.t)
    # A process of a tree that exits takes its CPU time along: never below 0.
    server = max(0.0, last.server_cpu - first.server_cpu) / wall
    load = max(0.0, last.load_cpu - first.load_cpu) / wall
    machine = (last.machine - first.machine) / wall
    return {
        "wall_s": round(wall, 3),
        "server_cores": round(server, 3),
        "loadgen_cores": round(load, 3),
        "other_cores": round(max(0.0, machine - server - load), 3),
    }
