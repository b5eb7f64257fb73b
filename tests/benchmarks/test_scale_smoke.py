"""Smoke test of the scaling benchmark (``benchmarks/scale.py --smoke``).

Runs the real command as a separate process: our server (``csms serve`` on SQLite), the plain
``ocpp`` library baseline and the websockets echo baseline, each under 50 load-generator
chargers over loopback, plus a small connection run with a reconnect storm and the engine
benchmark. Checks that every section is printed and that the JSON file holds the figures of
every part. No timing is asserted: the figures depend on the machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = (
    "== 1. Throughput at fixed rates",
    "== 2. Server memory per connection",
    "== 3. Connect and reconnect storms",
    "== 4. Diagnostics engine",
    "== 5. Ratios against the baselines",
    "== 6. Targets",
)
SMOKE_CHARGERS = 50
TARGETS = (
    "hold 20k chargers at <= 25 KB (KiB) each, PostgreSQL",
    ">= 10k msgs/s realistic mix at p99 < 50 ms, PostgreSQL",
    "10k-charger reconnect storm all booted in < 6 s, PostgreSQL",
    "diagnostics engine >= 100k events/s",
)


def test_smoke_run_prints_every_section_and_writes_the_figures(tmp_path: Path) -> None:
    out = tmp_path / "scale.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CSMS_")}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "scale.py"), "--smoke", "--json", str(out)],
        capture_output=True, text=True, timeout=110, cwd=tmp_path, env=env, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = proc.stdout
    positions = [report.find(title) for title in SECTIONS]
    assert -1 not in positions, report
    assert positions == sorted(positions)
    assert str(out) in report
    assert "machine load (1-minute load average" in report
    assert "limits.exempt_networks = 127.0.0.1" in report
    targets_text = report[report.index("== 6. Targets"):]
    for target in TARGETS:  # the table, then one line with the figure behind each result
        assert targets_text.count(target) == 2, (target, targets_text)

    data = json.loads(out.read_text())
    assert data["meta"]["mode"] == "smoke"
    assert data["meta"]["machine"]["loadavg_start"] >= 0
    assert set(data["throughput"]) == {"ours-sqlite", "plain-ocpp", "echo"}
    for name, ladder in data["throughput"].items():
        assert "error" not in ladder, name
        step = ladder["steps"][0]
        assert "error" not in step, (name, step)
        assert step["booted"] == SMOKE_CHARGERS, name
        assert step["answered"] > 0, name
        assert step["errors"]["call_errors"] == 0, (name, step["errors"])
        assert step["cpu_us_per_msg"] is not None and step["cpu_us_per_msg"] >= 0, name
        assert step["p99_ms"] >= step["p50_ms"] > 0, name
        assert step["window"]["server_cores"] >= 0 and step["window"]["other_cores"] >= 0
        assert ladder["summary"]["capacity_per_s"] > 0, name
        assert f"{ladder['label']} " in report

    [run] = data["connections"]
    assert run["server"] == "ours-sqlite"
    assert run["booted"] == SMOKE_CHARGERS
    assert run["connected_in_hold"] == SMOKE_CHARGERS and run["held"]
    assert run["rss_bytes"] > 0 and run["idle_rss_bytes"] > 0
    assert run["per_connection_bytes"] is not None
    assert run["reconnect_storm"]["booted"] == SMOKE_CHARGERS
    assert run["reconnect_storm"]["all_booted_s"] is not None
    assert run["reconnect_storm"]["p99_ms"] >= run["reconnect_storm"]["p50_ms"] > 0

    engine = data["engine"]
    assert engine["events_per_s"] > 0 and engine["events_per_cpu_s"] > 0
    metrics = {(row["metric"], row["server"]) for row in data["ratios"]}
    assert ("capacity msgs/s", "ours, SQLite") in metrics
    assert ("CPU µs per msg", "ours, SQLite") in metrics
    assert all(row["ours_vs_plain"] and row["ours_vs_echo"] for row in data["ratios"]
               if row["metric"] in ("capacity msgs/s", "CPU µs per msg"))
    assert [row["target"] for row in data["targets"]] == list(TARGETS)
    by_target = {row["target"]: row["met"] for row in data["targets"]}
    # Smoke mode runs no PostgreSQL: those targets are reported as not measured.
    assert [met for target, met in by_target.items() if "PostgreSQL" in target] == [None] * 3
    assert by_target[TARGETS[3]] in (True, False)
