"""The servers under test, each started as its own process on loopback with fresh state.

- ``ours-*``: ``python -m csms serve`` with persistence on: SQLite in a fresh data folder, or a
  fresh PostgreSQL database (``bench_<random>``, dropped when the server stops); ``--workers 2``
  runs two cluster nodes sharing the port (they need the MQTT broker at 127.0.0.1:1883; the
  benchmark gives them a topic prefix and node id of their own).
- ``plain-ocpp``: ``benchmarks/baselines/plain_ocpp.py`` (the ``ocpp`` library, its defaults).
- ``echo``: ``benchmarks/baselines/echo.py`` (a bare websockets echo server).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from benchmarks.scaling import procs
from benchmarks.scaling.postgres import Databases

ROOT = Path(__file__).resolve().parents[2]
BASELINES = ROOT / "benchmarks" / "baselines"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 8.0
"""Seconds a server gets to stop after SIGTERM before its process group is killed: nothing
is measured after the load, and the next phase starts a fresh server (and database)."""
SETTLE = 1.5
"""Seconds between the port listening and the idle memory reading."""
LIMITS_ENV = {"CSMS_LIMITS__EXEMPT_NETWORKS": '["127.0.0.1/32"]'}
"""Every charger of the load generator comes from 127.0.0.1: the per-address limits
(``limits.handshakes_per_minute`` and the others) would refuse a storm of thousands, so
loopback is exempt, as a deployment exempts its reverse proxy or carrier NAT. The
per-connection limits (``limits.ocpp_messages_per_second``, burst) stay at their defaults:
the load stays far below them (at most 20 CALLs/s per charger) and their cost is measured."""
SERVER_SETTINGS = ("persistence on (every event committed before its answer), diagnostics "
                   "engine on, settings defaults except limits.exempt_networks = "
                   "127.0.0.1 (all chargers come from loopback)")


@dataclass(frozen=True)
class ServerConfig:
    """One server variant of the benchmark."""

    name: str
    label: str
    kind: Literal["csms", "plain", "echo"]
    database: Literal["sqlite", "postgres"] | None = None
    workers: int = 1

    @property
    def ours(self) -> bool:
        return self.kind == "csms"

    @property
    def echo(self) -> bool:
        """The load generator must run in ``--echo`` mode against it."""
        return self.kind == "echo"


OURS_SQLITE = ServerConfig("ours-sqlite", "ours, SQLite", "csms", "sqlite")
OURS_POSTGRES = ServerConfig("ours-postgres", "ours, PostgreSQL", "csms", "postgres")
OURS_POSTGRES_W2 = ServerConfig("ours-postgres-w2", "ours, PostgreSQL, --workers 2", "csms",
                                "postgres", workers=2)
PLAIN = ServerConfig("plain-ocpp", "plain ocpp library", "plain")
ECHO = ServerConfig("echo", "websockets echo", "echo")
CONFIGS = {c.name: c for c in (OURS_SQLITE, OURS_POSTGRES, OURS_POSTGRES_W2, PLAIN, ECHO)}


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive free ports (FTP of ``--workers``: port + index)."""
    for _ in range(200):
        first = free_port()
        try:
            with contextlib.ExitStack() as stack:
                for port in range(first, first + count):
                    sock = stack.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
    raise RuntimeError(f"no {count} consecutive free ports")


def listeners(port: int) -> int:
    """Sockets listening on ``127.0.0.1:port`` or ``0.0.0.0:port`` (IPv4, /proc/net/tcp)."""
    suffix = f":{port:04X}"
    count = 0
    with contextlib.suppress(OSError), open("/proc/net/tcp", encoding="ascii") as table:
        next(table)
        for line in table:
            fields = line.split(None, 4)
            if fields[3] == "0A" and fields[1].endswith(suffix):
                count += 1
    return count


class ServerProcess:
    """One server run: :meth:`start`, then :attr:`url` for the chargers, then :meth:`stop`."""

    def __init__(self, config: ServerConfig, workdir: Path,
                 databases: Databases | None = None) -> None:
        self.config = config
        self.workdir = workdir / f"{config.name}-{secrets.token_hex(3)}"
        self.databases = databases
        self.port = 0
        self.database_url: str | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.idle_rss = 0
        """Resident memory of the whole tree once started and idle (bytes)."""
        self.log_path = self.workdir / "server.log"

    @property
    def url(self) -> str:
        """The websocket base URL; the load generator appends the charger id."""
        return f"ws://127.0.0.1:{self.port}/ocpp"

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    def command(self) -> list[str]:
        """The server's command line."""
        python = sys.executable
        if self.config.kind == "plain":
            return [python, str(BASELINES / "plain_ocpp.py"), "--port", str(self.port)]
        if self.config.kind == "echo":
            return [python, str(BASELINES / "echo.py"), "--port", str(self.port)]
        assert self.database_url is not None
        command = [python, "-m", "csms", "serve", "--host", "127.0.0.1",
                   "--ocpp-port", str(self.port), "--http-port", str(free_port()),
                   "--ftp-port", str(free_ports(self.config.workers)),
                   "--data-dir", str(self.workdir), "--database-url", self.database_url,
                   "--log-format", "json"]
        if self.config.workers > 1:
            command += ["--workers", str(self.config.workers)]
        return command

    def environment(self) -> dict[str, str]:
        """The parent's environment without CSMS_* settings, plus this run's own."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("CSMS_")}
        env["PYTHONPATH"] = str(ROOT)
        tag = secrets.token_hex(4)
        env["CSMS_NODE_ID"] = f"bench-{tag}"
        env["CSMS_MQTT__TOPIC_PREFIX"] = f"bench-{tag}"
        env.update(LIMITS_ENV)
        return env

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start and wait until every worker listens; then read the idle memory."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        if self.config.database == "postgres":
            if self.databases is None:
                raise RuntimeError("PostgreSQL is not available")
            self.database_url = self.databases.create()
        elif self.config.database == "sqlite":
            self.database_url = f"sqlite+aiosqlite:///{self.workdir / 'csms.db'}"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
                env=self.environment(), start_new_session=True)
        deadline = time.monotonic() + timeout
        while listeners(self.port) < self.config.workers:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.config.name} exited early: {self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.config.name} did not listen within {timeout:.0f} s")
            time.sleep(0.05)
        time.sleep(SETTLE)
        self.idle_rss = procs.read(self.pid, None).server_rss

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM (the supervisor stops its workers), SIGKILL after a while; drop the
        database."""
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        if process is not None:  # a worker left behind by its supervisor
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
        if self.database_url is not None and self.config.database == "postgres":
            assert self.databases is not None
            with contextlib.suppress(Exception):
                self.databases.drop(self.database_url)
            self.database_url = None

    def log_tail(self, lines: int = 5) -> str:
        """The last lines of the server's output (for error messages)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return " | ".join(text.strip().splitlines()[-lines:])[-1500:]

    def __enter__(self) -> ServerProcess:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
