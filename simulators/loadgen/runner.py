"""Running a load fleet in this process or spread over several (``spawn``) processes."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import multiprocessing
import queue
import resource
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from simulators.loadgen.config import LoadConfig
from simulators.loadgen.fleet import LoadFleet, ProgressCallback
from simulators.loadgen.progress import combine
from simulators.loadgen.stats import Stats


def loop_factory(use_uvloop: bool) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when asked for and importable (it is not a dependency), else None."""
    if not use_uvloop:
        return None
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def raise_fd_limit(chargers: int) -> int:
    """Raise the open-files limit to fit ``chargers`` sockets if allowed; the soft limit."""
    needed = chargers + 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return soft
    for limits in ((needed, max(hard, needed)), (min(needed, hard), hard)):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, limits)
            break
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


async def run_async(config: LoadConfig, progress: ProgressCallback | None = None,
                    before_storm: Callable[[], Awaitable[None]] | None = None) -> Stats:
    """Run one fleet in the running loop; SIGINT/SIGTERM end it early (cleanly)."""
    fleet = LoadFleet(config, on_progress=progress)
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    installed = []
    if threading.current_thread() is threading.main_thread():
        for sig in signals:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, fleet.request_stop)
                installed.append(sig)
    try:
        return await fleet.run(before_storm)
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


GC_THRESHOLD = (100_000, 50, 100)
"""Garbage-collector thresholds while a fleet runs: thousands of chargers are hundreds of
thousands of long-lived objects, and CPython's (700, 10, 10) would spend the generator's
CPU rescanning them (the server does the same: ``runtime.gc_threshold``)."""


@contextlib.contextmanager
def fleet_gc() -> Iterator[None]:
    """:data:`GC_THRESHOLD` for the block, the previous thresholds after it."""
    previous = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLD)
    try:
        yield
    finally:
        gc.set_threshold(*previous)


def run_fleet(config: LoadConfig, progress: ProgressCallback | None = None, *,
              use_uvloop: bool = True,
              before_storm: Callable[[], Awaitable[None]] | None = None) -> Stats:
    """Run one fleet in a new event loop (uvloop if available and wanted)."""
    raise_fd_limit(config.count)
    with fleet_gc(), asyncio.Runner(loop_factory=loop_factory(use_uvloop)) as runner:
        return runner.run(run_async(config, progress, before_storm))


def _child(config: LoadConfig, index: int, barrier: Any, results: Any, use_uvloop: bool,
           report: bool) -> None:
    """One process of a multi-process run: wait for the others, run, send the stats back."""
    def progress(snap: dict[str, Any]) -> None:
        results.put(("progress", index, snap))

    def meet(timeout: float) -> None:
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=timeout)

    async def together() -> None:  # the processes drop their connections at the same time
        await asyncio.to_thread(meet, 30.0)

    try:
        meet(120.0)
        stats = run_fleet(config, progress if report else None, use_uvloop=use_uvloop,
                          before_storm=together)
        results.put(("done", index, stats.to_dict()))
    except BaseException as exc:
        results.put(("failed", index, repr(exc)))
        raise


def run_processes(config: LoadConfig, processes: int,
                  progress: ProgressCallback | None = None, *, use_uvloop: bool = True) -> Stats:
    """Split the fleet over ``processes`` processes; merge their counters and histograms.

    They start together (a barrier), so a storm is one storm. Raises RuntimeError if a
    process fails or does not report within the run's time bound.
    """
    parts = config.split(processes)
    if len(parts) == 1:
        return run_fleet(parts[0], progress, use_uvloop=use_uvloop)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(parts))
    results = ctx.Queue()
    children = [
        ctx.Process(target=_child, args=(part, n, barrier, results, use_uvloop,
                                         progress is not None), daemon=True)
        for n, part in enumerate(parts)
    ]
    for child in children:
        child.start()
    done: dict[int, Stats] = {}
    snaps: dict[int, dict[str, Any]] = {}
    failures: list[str] = []
    shown = 0.0
    bound = (120 + config.duration + config.drain_timeout + config.close_timeout
             + config.boot_timeout + 60
             + ((config.storm_timeout or config.boot_timeout) if config.reconnect_storm else 0))
    deadline = time.monotonic() + bound
    previous = signal.getsignal(signal.SIGINT)
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        while len(done) + len(failures) < len(children) and time.monotonic() < deadline:
            if stop.is_set():
                stop.clear()
                for child in children:
                    if child.is_alive() and child.pid is not None:
                        child.terminate()  # SIGTERM: the child stops its fleet cleanly
            try:
                kind, index, data = results.get(timeout=0.5)
            except queue.Empty:
                if not any(child.is_alive() for child in children) and results.empty():
                    break
                continue
            if kind == "progress" and progress is not None:
                snaps[index] = data
                if len(snaps) == len(children) and time.monotonic() >= shown + 0.9:
                    shown = time.monotonic()
                    progress(combine(list(snaps.values())))
            elif kind == "done":
                done[index] = Stats.from_dict(data)
            elif kind == "failed":
                failures.append(f"process {index}: {data}")
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, previous)
        for child in children:
            child.join(timeout=10)
            if child.is_alive():
                child.kill()
                child.join(timeout=5)
        results.close()
    if len(done) < len(children):
        missing = [n for n in range(len(children)) if n not in done]
        raise RuntimeError(f"load processes {missing} did not report: {failures}")
    return Stats.combine([done[n] for n in sorted(done)])
