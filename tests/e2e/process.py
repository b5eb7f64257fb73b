"""The real server as a separate process, for tests that must see it from outside."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import IO

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def console_script(name: str) -> list[str]:
    """The installed console script, or ``python -m`` when running from a source tree."""
    script = BIN / name
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", {"csms": "csms", "csms-sim": "simulators"}[name]]


class ServerProcess:
    """``csms serve`` on loopback with its own ports, data folder and database URL."""

    def __init__(
        self, database_url: str, data_dir: Path, *extra: str, env: dict[str, str] | None = None
    ) -> None:
        self.database_url = database_url
        self.env = env or {}
        self.data_dir = data_dir
        self.ocpp_port = free_port()
        self.http_port = free_port()
        self.ftp_port = free_port()
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / "server.log"

    @property
    def ocpp_url(self) -> str:
        return f"ws://127.0.0.1:{self.ocpp_port}/ocpp"

    def start(self, timeout: float = 30.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = self._spawn(log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.ocpp_port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"server did not listen in {timeout} s:\n{self.log()}")

    def wait_ready(self, count: int = 1, timeout: float = 30.0) -> None:
        """Wait until ``count`` processes (``--workers``) have logged ``csms_ready``.

        ``start`` returns once the first process listens; with SO_REUSEPORT the kernel only
        spreads connections over the workers that already listen."""
        deadline = time.monotonic() + timeout
        while self.log().count('"csms_ready"') < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{count} workers not ready in {timeout} s:\n{self.log()}")
            time.sleep(0.05)

    def _spawn(self, log: IO[bytes]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [*console_script("csms"), "serve", "--host", "127.0.0.1",
             "--ocpp-port", str(self.ocpp_port), "--http-port", str(self.http_port),
             "--ftp-port", str(self.ftp_port),
             "--database-url", self.database_url, "--data-dir", str(self.data_dir),
             "--log-format", "json", *self.extra],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.data_dir,
            env={**{k: v for k, v in os.environ.items() if not k.startswith("CSMS_")},
                 **self.env},
        )

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Stop with ``sig`` and return the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            self.process.kill()
            self.process.wait()
            raise RuntimeError(
                f"server did not stop on {sig.name} in {timeout} s; its log ends:\n"
                f"{self.log()[-6000:]}"
            ) from exc

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.process is not None and self.process.poll() is None:
            self.stop()


async def run_command(
    *args: str, timeout: float = 60.0, cwd: Path | None = None
) -> tuple[int, str]:
    """Run a command to completion; return its exit code and combined output."""
    process = await asyncio.create_subprocess_exec(
        *args, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")
