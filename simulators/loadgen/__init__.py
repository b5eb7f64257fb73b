"""Fleet mode: thousands of lightweight OCPP chargers from one process, for load tests,
connect storms and benchmarks (``python -m simulators.loadgen --help``).

Unlike :mod:`simulators.fleet` (full-featured stations, fault scenarios), a charger here is a
few hundred bytes of state driven by callbacks, with pre-built JSON frames and a lean
websocket client. Imports nothing from ``csms`` or ``diagnostics``.
"""

from simulators.loadgen.config import LoadConfig
from simulators.loadgen.fleet import LoadFleet
from simulators.loadgen.histogram import Histogram
from simulators.loadgen.runner import run_fleet, run_processes
from simulators.loadgen.stats import Stats

__all__ = ["Histogram", "LoadConfig", "LoadFleet", "Stats", "run_fleet", "run_processes"]
