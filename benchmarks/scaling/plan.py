"""What a benchmark run measures, by mode: ``full`` (at most 20 minutes), ``quick`` (about 3
minutes, for development) and ``smoke`` (a few seconds of each section, SQLite only, for the
test). Phases run most important first (PostgreSQL and the baselines), so that a run cut
short by its time budget still has the targets and the ratios."""

from __future__ import annotations

from dataclasses import dataclass, replace

from benchmarks.scaling.servers import (
    ECHO,
    OURS_POSTGRES,
    OURS_POSTGRES_W2,
    OURS_SQLITE,
    PLAIN,
    ServerConfig,
)

SECTIONS = ("throughput", "memory", "storm", "engine")


@dataclass(frozen=True)
class ConnectionRun:
    """A fresh server, ``count`` chargers connecting at once, a quiet hold (memory), and with
    ``storm`` a reconnect storm (every connection reset, all reconnecting at once)."""

    config: ServerConfig
    count: int
    storm: bool
    processes: int = 1
    """Load generator processes (one holds at most ~19,000 sockets: the open-files limit)."""


@dataclass(frozen=True)
class Plan:
    """Every phase of a run; see the module doc for the modes."""

    mode: str
    ladder_configs: tuple[ServerConfig, ...]
    rates: tuple[float, ...]
    """Fixed rates (CALLs/s, realistic mix) climbed in order."""
    ladder_chargers: int
    step_seconds: float
    warmup_seconds: float
    """The first seconds of each step are not measured: the server is still answering the
    boots and first StatusNotifications of every charger (a connect storm of its own)."""
    split_rate: float
    """From this rate on the load generator runs as two processes."""
    connection_runs: tuple[ConnectionRun, ...]
    hold_seconds: float
    boot_timeout: float
    """Longest wait for every charger of a ladder step to boot."""
    connect_timeout: float
    """Connection runs: longest wait for the reconnect storm to boot every charger again."""
    hold_timeout: float
    """Connection runs: longest wait for every charger to first connect and boot (the memory
    is read with those connected by then)."""
    connect_cap: int
    """Handshakes in flight while the chargers first connect (the reconnect storm is not
    capped): memory is measured on a fleet that connected, however slowly."""
    engine_events: int
    engine_repeat: int
    budget_seconds: float
    """Phases that would start after this many seconds are skipped (and reported so)."""
    max_p99: float = 1.0
    """A step is held when p99 latency stays within this many seconds (and 95% of the rate
    is achieved)."""
    stop_p99: float = 5.0
    """Stop climbing once p99 latency exceeds this many seconds (a backlog building up)..."""
    min_achieved: float = 0.8
    """... or once the rate achieved falls below this share of the target."""

    def without_postgres(self) -> Plan:
        """The same plan on SQLite and the baselines only."""
        return replace(
            self,
            ladder_configs=tuple(c for c in self.ladder_configs if c.database != "postgres"),
            connection_runs=tuple(r for r in self.connection_runs
                                  if r.config.database != "postgres"),
        )

    def servers(self, names: set[str]) -> Plan:
        """Only the server variants named (``ours-postgres``, ``plain-ocpp``...)."""
        return replace(
            self,
            ladder_configs=tuple(c for c in self.ladder_configs if c.name in names),
            connection_runs=tuple(r for r in self.connection_runs if r.config.name in names),
        )

    def sections(self, names: set[str]) -> Plan:
        """Only the sections named (throughput, memory, storm, engine)."""
        runs: tuple[ConnectionRun, ...] = ()
        if "memory" in names:
            runs = tuple(r if "storm" in names else replace(r, storm=False)
                         for r in self.connection_runs)
        elif "storm" in names:
            runs = tuple(r for r in self.connection_runs if r.storm)
        return replace(
            self,
            ladder_configs=self.ladder_configs if "throughput" in names else (),
            connection_runs=runs,
            engine_events=self.engine_events if "engine" in names else 0,
        )


FULL = Plan(
    mode="full",
    ladder_configs=(OURS_POSTGRES, PLAIN, ECHO, OURS_SQLITE, OURS_POSTGRES_W2),
    rates=(250, 500, 1000, 2000, 3000, 5000, 10000, 20000),
    ladder_chargers=1000,
    step_seconds=12,
    warmup_seconds=2,
    split_rate=5000,
    connection_runs=(
        ConnectionRun(OURS_POSTGRES, 10000, storm=True),
        ConnectionRun(OURS_POSTGRES_W2, 20000, storm=False, processes=2),
        ConnectionRun(PLAIN, 10000, storm=True),
        ConnectionRun(ECHO, 10000, storm=True),
        ConnectionRun(OURS_POSTGRES, 5000, storm=True),
        ConnectionRun(PLAIN, 5000, storm=True),
        ConnectionRun(ECHO, 5000, storm=True),
        ConnectionRun(OURS_POSTGRES, 1000, storm=False),
        ConnectionRun(OURS_POSTGRES_W2, 10000, storm=True, processes=2),
        ConnectionRun(OURS_SQLITE, 5000, storm=True),
    ),
    hold_seconds=4,
    boot_timeout=40,
    connect_timeout=30,
    hold_timeout=120,
    connect_cap=1000,
    engine_events=300_000,
    engine_repeat=2,
    budget_seconds=17 * 60,
)

QUICK = replace(
    FULL,
    mode="quick",
    rates=(1000,),
    ladder_chargers=300,
    step_seconds=6,
    warmup_seconds=1,
    connection_runs=(
        ConnectionRun(OURS_POSTGRES, 2000, storm=True),
        ConnectionRun(OURS_POSTGRES_W2, 4000, storm=False, processes=2),
        ConnectionRun(PLAIN, 2000, storm=True),
        ConnectionRun(ECHO, 2000, storm=True),
    ),
    hold_seconds=2,
    boot_timeout=20,
    connect_timeout=15,
    hold_timeout=40,
    engine_events=100_000,
    engine_repeat=1,
    budget_seconds=4 * 60,
)

SMOKE = replace(
    FULL,
    mode="smoke",
    ladder_configs=(OURS_SQLITE, PLAIN, ECHO),
    rates=(100,),
    ladder_chargers=50,
    step_seconds=3,
    warmup_seconds=0.5,
    connection_runs=(ConnectionRun(OURS_SQLITE, 50, storm=True),),
    hold_seconds=2,
    boot_timeout=20,
    connect_timeout=20,
    hold_timeout=20,
    connect_cap=20,
    engine_events=20_000,
    engine_repeat=1,
    budget_seconds=90,
)

PLANS = {"full": FULL, "quick": QUICK, "smoke": SMOKE}
