"""Fixtures of the outage tests: a private PostgreSQL cluster (see :mod:`.postgres`), the
central system's logs as JSON lines in a file (as ``csms serve --log-format json`` writes)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.logcapture import json_logging
from tests.outages.postgres import PrivatePostgres, binaries


@pytest.fixture
async def private_postgres() -> AsyncIterator[PrivatePostgres]:
    """A running PostgreSQL cluster of this test's own, which it may stop and start."""
    bin_dir = binaries()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb, pg_ctl) "
                    "are not installed: no private cluster to restart")
    cluster = PrivatePostgres(bin_dir)
    try:
        await cluster.init()
        await cluster.start()
        yield cluster
    finally:
        await cluster.close()


class JsonLog:
    """The lines logged during the test, parsed."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def lines(self, event: str | None = None) -> list[dict[str, Any]]:
        found = []
        for line in self.path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                entry = json.loads(line)
                if event is None or entry.get("event") == event:
                    found.append(entry)
        return found


@pytest.fixture
def json_log(tmp_path: Path) -> Iterator[JsonLog]:
    """The production log set-up (JSON lines, info) into ``tmp_path/server.log``."""
    path = tmp_path / "server.log"
    with path.open("w") as stream, json_logging(stream):
        yield JsonLog(path)
