"""Scaling benchmark: one command, one run on this machine, loopback only, bounded in time.

Measures our server with persistence on (SQLite; PostgreSQL single process and
``--workers 2``) against two baselines under the same load from the load generator
(``simulators.loadgen``): a plain ``ocpp`` library server with its defaults and a bare websockets
echo server. Sections: sustained msgs/s at fixed rates (p50, p99, server CPU µs per message),
server memory per connection (1k, 5k, 10k, 20k chargers), connect and reconnect storms
(5k, 10k: time until all booted, p50 / p99 per charger), the diagnostics engine (events/s),
the ratios against the baselines and the targets (met / not met). Every figure goes to a JSON
file. See README.md, "Scaling".

    python benchmarks/scale.py [--quick | --smoke] [--skip-postgres] [--only SECTION]
                               [--json PATH] [--profile DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.scaling.cli import main  # noqa: E402 - needs the repository on sys.path

if __name__ == "__main__":
    sys.exit(main())
