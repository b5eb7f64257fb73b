"""A private PostgreSQL cluster that a test may stop and start again.

The shared server on 127.0.0.1:5432 serves every other test at the same time and is never
restarted; an outage test gets a cluster of its own instead: ``initdb`` in a temporary folder,
``postgres`` on a free loopback port, trust authentication, stopped (``pg_ctl stop``) and
started again by the test, removed at the end. PostgreSQL refuses to run as root, so when the
tests run as root the binaries run as the ``postgres`` user (``runuser``), in a folder that
user owns.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import tempfile
from pathlib import Path

from tests.e2e.process import free_port, run_command

HOST = "127.0.0.1"
USER = "postgres"


def binaries() -> Path | None:
    """The newest installed PostgreSQL ``bin`` folder with ``initdb`` and ``pg_ctl``."""
    found = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")]
    found = [b for b in found if (b / "initdb").exists()]
    if not found:
        return None
    return max(found, key=lambda b: int(b.parent.name) if b.parent.name.isdigit() else 0)


class PrivatePostgres:
    """One throwaway cluster (see the module doc); :attr:`url` is its ``postgres`` database."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="csms-outage-pg-"))
        self.data = self.root / "data"
        self.log_path = self.root / "postgres.log"
        self.starts = 0
        self.stops = 0
        self._as_root = os.geteuid() == 0
        if self._as_root:
            account = pwd.getpwnam(USER)
            os.chown(self.root, account.pw_uid, account.pw_gid)

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://{USER}@{HOST}:{self.port}/postgres"

    async def _run(self, *args: str, timeout: float = 60.0) -> str:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self._as_root:
            command = ["runuser", "-u", USER, "--", *command]
        code, text = await run_command(*command, timeout=timeout, cwd=self.root)
        if code != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({code}):\n{text}\n"
                               f"{self.log()[-3000:]}")
        return text

    async def init(self) -> None:
        """Create the cluster (trust authentication, no fsync: a test, not a bank)."""
        await self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", USER,
                        "-E", "UTF8", "--locale", "C", "--no-sync")

    async def start(self) -> None:
        """Start the server and wait until it accepts connections (``pg_ctl -w``)."""
        options = (f"-c listen_addresses={HOST} -p {self.port} "
                   f"-c unix_socket_directories={self.root} -c fsync=off "
                   "-c full_page_writes=off -c max_connections=200")
        await self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-w",
                        "-t", "60", "-o", options, "start")
        self.starts += 1

    async def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop -m fast`` (sessions ended, clean shutdown) or ``immediate`` (no
        shutdown at all: crash recovery at the next start)."""
        await self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")
        self.stops += 1

    async def close(self) -> None:
        """Stop the server if it runs and remove the folder."""
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(Exception):
                await self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        """The server's log (for failure messages)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
