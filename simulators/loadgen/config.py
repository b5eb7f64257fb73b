"""Options of a load fleet (:class:`LoadConfig`) and how chargers are numbered and mixed."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

ConnectMode = Literal["storm", "ramp"]


@dataclass(frozen=True)
class LoadConfig:
    """Everything a :class:`~simulators.loadgen.fleet.LoadFleet` needs.

    Chargers are ``<id_prefix><n>`` for ``n`` in ``first .. first + count - 1``, zero-padded
    to ``id_width`` digits (default: the digits of the last number of the whole fleet,
    ``total``). A fraction ``mix`` of them speak OCPP 2.0.1, the rest 1.6, spread evenly
    over the numbers (so the split of a fleet over processes keeps the mix).

    With ``rate`` > 0 the traffic is open-loop at ``rate`` CALLs per second over all booted
    chargers (a fixed cycle of heartbeat, status change and sessions); with ``rate`` 0 each
    charger runs its own timers (heartbeat, status changes, sessions with meter values).
    """

    url: str
    count: int = 100
    mix: float = 0.5
    """Fraction of OCPP 2.0.1 chargers (0: all 1.6, 1: all 2.0.1)."""
    id_prefix: str = "LOAD-"
    first: int = 1
    total: int | None = None
    """Chargers of the whole fleet across processes (default ``count``)."""
    id_width: int | None = None
    connectors: int = 2
    password: str | None = None
    """HTTP Basic auth password (the user is the charger id), same for every charger."""
    ca_file: str | None = None
    """``wss://``: CA certificate(s) trusted for the CSMS's server certificate (default: the
    system store)."""
    cert_file: str | None = None
    """``wss://``: client certificate of security profile 3; ``{id}`` in the path is replaced
    by each charger's id."""
    key_file: str | None = None
    """The private key of ``cert_file`` (unencrypted PEM; ``{id}`` as there)."""

    # ---- traffic
    rate: float = 0.0
    """Fixed open-loop rate in CALLs/s over the whole fleet; 0: per-charger timers."""
    warmup: float = 0.0
    """Seconds at the start of the rate phase whose CALLs are sent but not measured (the
    server still answering the boots); they count in ``duration``."""
    heartbeat_interval: float | None = None
    """Seconds between heartbeats; None: the interval the CSMS answers at boot."""
    status_interval: float = 300.0
    """Seconds between status changes of a charger (timer mode; 0: none)."""
    sessions: bool = True
    session_interval: float = 600.0
    """Seconds of pause between two sessions of a charger (timer mode)."""
    meter_interval: float = 60.0
    """Seconds between meter values during a session (timer mode)."""
    meter_samples: int = 5
    """Meter values per session (both modes)."""

    # ---- connecting
    connect: ConnectMode = "storm"
    ramp_rate: float = 100.0
    """Chargers connecting per second in ``ramp`` mode."""
    max_handshakes: int = 0
    """At most this many TCP connects + websocket handshakes in flight (0: no cap); the
    reconnect storm is never capped."""
    open_timeout: float = 30.0
    reconnect: bool = True
    reconnect_delay: float = 1.0
    reconnect_max: float = 30.0
    reset_delay: float = 0.5
    """Seconds between answering Reset and dropping the connection to reboot."""

    # ---- run
    duration: float = 30.0
    """Seconds of traffic once the connect phase is over."""
    boot_timeout: float = 60.0
    """The connect phase ends when every charger booted, at the latest after this long."""
    call_timeout: float = 30.0
    drain_timeout: float = 3.0
    """At the end: seconds to wait for the answers of CALLs in flight."""
    close_timeout: float = 5.0
    max_backlog: int = 50
    """CALLs queued per charger behind the one in flight; more are dropped and counted."""
    reconnect_storm: bool = False
    """After the traffic: drop every connection at once, reconnect all at once, measure."""
    storm_timeout: float | None = None
    """Longest wait for every charger to boot again in the reconnect storm (default
    ``boot_timeout``)."""
    echo: bool = False
    """The server echoes frames back (bare websockets echo server): any frame with the id of
    the CALL in flight is its answer, and every boot counts as accepted."""
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        if self.count < 1:
            problems.append("count must be >= 1")
        if not 0.0 <= self.mix <= 1.0:
            problems.append("mix must be within 0..1")
        if self.connectors < 1:
            problems.append("connectors must be >= 1")
        if self.rate < 0:
            problems.append("rate must be >= 0")
        if not 0 <= self.warmup < self.duration:
            problems.append("warmup must be >= 0 and shorter than duration")
        if self.duration <= 0:
            problems.append("duration must be > 0")
        if self.storm_timeout is not None and self.storm_timeout <= 0:
            problems.append("storm_timeout must be > 0")
        if self.connect not in ("storm", "ramp"):
            problems.append("connect must be storm or ramp")
        if self.ramp_rate <= 0:
            problems.append("ramp_rate must be > 0")
        if self.meter_samples < 1:
            problems.append("meter_samples must be >= 1")
        if self.first < 1 or (self.total is not None and self.total < self.first + self.count - 1):
            problems.append("first/total do not cover the chargers")
        if not self.url.startswith(("ws://", "wss://")):
            problems.append("url must start with ws:// or wss://")
        elif not self.tls and (self.ca_file or self.cert_file or self.key_file):
            problems.append("the TLS files are only used with a wss:// url")
        if (self.cert_file is None) != (self.key_file is None):
            problems.append("a client certificate needs both cert_file and key_file")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def tls(self) -> bool:
        """Whether the chargers connect over TLS (``wss://``, security profiles 2 and 3)."""
        return self.url.startswith("wss://")

    @property
    def width(self) -> int:
        """Digits of the charger numbers."""
        if self.id_width is not None:
            return self.id_width
        return max(3, len(str(self.total or self.first + self.count - 1)))

    def charger_id(self, number: int) -> str:
        """The id of charger ``number`` (1-based over the whole fleet)."""
        return f"{self.id_prefix}{number:0{self.width}d}"

    def is_v201(self, number: int) -> bool:
        """Whether charger ``number`` speaks 2.0.1 (``mix`` spread evenly over the numbers)."""
        return math.floor(number * self.mix) > math.floor((number - 1) * self.mix)

    def with_(self, **changes: Any) -> LoadConfig:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def split(self, parts: int) -> list[LoadConfig]:
        """This fleet cut into ``parts`` consecutive slices (for several processes)."""
        parts = max(1, min(parts, self.count))
        base, extra = divmod(self.count, parts)
        out, first = [], self.first
        total = self.total or self.first + self.count - 1
        for n in range(parts):
            size = base + (1 if n < extra else 0)
            out.append(self.with_(
                count=size, first=first, total=total, id_width=self.width,
                rate=self.rate * size / self.count,
                ramp_rate=self.ramp_rate * size / self.count,
                max_handshakes=(max(1, self.max_handshakes * size // self.count)
                                if self.max_handshakes else 0),
                seed=self.seed + n,
            ))
            first += size
        return out

    def summary(self) -> dict[str, Any]:
        """The options as a JSON-compatible dict (without the password)."""
        data = dataclasses.asdict(self)
        data["password"] = "***" if self.password else None
        return data
