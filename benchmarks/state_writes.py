"""Benchmark: what the diagnostics write-ahead costs per batch, whole state against deltas.

The engine state is saved before the commands of a batch are sent. This builds a fleet's
state with the engine benchmark's event mix (``engine_throughput.build_events``), then feeds
further batches of events and prints, per batch: the whole state encoded by the type-directed
encoder (what was written before), by orjson (``EngineState.to_json``), and the delta the
runner writes now (``DiagnosticsEngine.state_delta``: the core and the touched stations).

Run: ``PYTHONPATH=. python benchmarks/state_writes.py [--stations 2000 10000] [--batch 100]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from engine_throughput import CONFIG, build_events

from diagnostics import (
    DiagnosticsEngine,
    SendCommand,
    Timings,
    load_playbooks,
    load_sla,
)
from diagnostics.commands import CommandOutcome, OutcomeStatus
from diagnostics.serde import encode
from diagnostics.state import EngineState


def measure(stations: int, events: int, batch: int, batches: int) -> dict[str, float]:
    engine = DiagnosticsEngine(load_playbooks(CONFIG / "playbooks.toml"),
                               load_sla(CONFIG / "sla.toml"), Timings(),
                               upload_base="http://csms/uploads")
    stream = build_events(stations, events + batch * batches, 11)
    accepted = CommandOutcome(status=OutcomeStatus.ACCEPTED, action="bench")

    def feed(chunk: list) -> None:  # type: ignore[type-arg]
        for event in chunk:
            for action in engine.observe(event, event.at):
                if type(action) is SendCommand:
                    engine.command_finished(action.command_id, accepted, event.at)

    feed(stream[:events])
    engine.state_delta()  # the first (full) save
    started = time.perf_counter()
    old = json.dumps(encode(EngineState, engine._s), separators=(",", ":"))
    old_s = time.perf_counter() - started
    started = time.perf_counter()
    whole = engine.snapshot_json()
    whole_s = time.perf_counter() - started
    sizes, cores, times, touched = [], [], [], []
    for n in range(batches):
        feed(stream[events + n * batch: events + (n + 1) * batch])
        started = time.perf_counter()
        delta = engine.state_delta()
        times.append(time.perf_counter() - started)
        sizes.append(len(delta.core) + sum(len(s or "") for s in delta.shards.values()))
        touched.append(len(delta.shards))
        cores.append(len(delta.core))
    return {"stations": stations, "state_mb": len(old) / 1e6, "typed_ms": old_s * 1e3,
            "orjson_ms": whole_s * 1e3, "orjson_mb": len(whole) / 1e6,
            "delta_kb": statistics.median(sizes) / 1e3, "delta_ms": statistics.median(times) * 1e3,
            "touched": statistics.median(touched), "core_kb": statistics.median(cores) / 1e3}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stations", type=int, nargs="+", default=[2000, 10000])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--batch", type=int, default=100, help="events per saved batch")
    parser.add_argument("--batches", type=int, default=50)
    args = parser.parse_args(argv)
    print(f"{'stations':>8} {'state MB':>9} {'typed ms':>9} {'orjson ms':>10} "
          f"{'delta KB':>9} {'of it core':>10} {'delta ms':>9} {'stations/delta':>15}")
    for stations in args.stations:
        r = measure(stations, args.events, args.batch, args.batches)
        print(f"{r['stations']:>8} {r['state_mb']:>9.1f} {r['typed_ms']:>9.0f} "
              f"{r['orjson_ms']:>10.0f} {r['delta_kb']:>9.1f} {r['core_kb']:>10.1f} "
              f"{r['delta_ms']:>9.2f} "
              f"{r['touched']:>15.0f}")
    print(f"(delta: median of {args.batches} batches of {args.batch} events; typed = the "
          "type-directed encoder the write-ahead used before)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
