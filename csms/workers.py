"""``csms serve --workers N``: N processes on one machine, one cluster node each.

The workers share the OCPP and HTTP ports (SO_REUSEPORT: the kernel spreads new connections
over them) and run as cluster nodes on the same database and broker, so a command reaches
a charger whichever worker holds it and one worker at a time leads the diagnostics. Each
worker also listens on a private HTTP port and its own FTP port (``ftp_port + index``) that it
puts in the upload locations it hands out, so a charger's log upload reaches the worker that
asked for it. The parent only supervises: it forwards SIGINT/SIGTERM and restarts a worker
that dies (with back-off).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from csms.logs import get_logger
from csms.settings import Settings

log = get_logger("csms.workers")

STOP_TIMEOUT = 20.0


def worker_overrides(settings: Settings, index: int) -> dict[str, Any]:
    """The settings a worker changes: its node id, shared ports, its own upload ports."""
    ftp_port = settings.uploads.ftp_port
    return {
        "node_id": f"{settings.node_id}-w{index}",
        "cluster": {"enabled": True},
        "ocpp": {"reuse_port": True},
        "http": {"reuse_port": True, "upload_port": 0},
        "uploads": {"ftp_port": ftp_port + index if ftp_port else 0},
    }


def check(settings: Settings, count: int) -> str | None:
    """Why ``count`` workers cannot run with these settings (``None``: they can)."""
    if count < 1:
        return "--workers must be at least 1"
    if count > 1 and settings.database_url.startswith("sqlite"):
        return ("--workers needs PostgreSQL: set database.url (or --database-url); "
                "the workers are cluster nodes and share its database and the MQTT broker")
    return None


def supervise(argv: Sequence[str], count: int) -> int:
    """Run ``count`` workers (``csms <argv> --worker-index i``) until SIGINT or SIGTERM."""
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    procs: dict[int, subprocess.Popen[bytes]] = {}
    failures: dict[int, int] = {}
    restart_at: dict[int, float] = {}

    def spawn(index: int) -> None:
        procs[index] = subprocess.Popen(
            [sys.executable, "-m", "csms", *argv, "--worker-index", str(index)])
        log.info("worker_started", index=index, pid=procs[index].pid)

    for index in range(count):
        spawn(index)
    while not stopping:
        time.sleep(0.2)
        now = time.monotonic()
        for index, proc in list(procs.items()):
            code = proc.poll()
            if code is None:
                continue
            if index not in restart_at:
                failures[index] = failures.get(index, 0) + 1
                delay = min(30.0, 0.5 * 2 ** (failures[index] - 1))
                restart_at[index] = now + delay
                log.error("worker_died", index=index, code=code, restart_in=delay)
            elif now >= restart_at.pop(index):
                spawn(index)
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for proc in procs.values():
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return 0
