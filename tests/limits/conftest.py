"""Limit tests: central systems with small ``[limits]``, the refusal counter as Prometheus
scrapes it, and the JSON log lines the refusals write.

Rates are set so that nothing refills during a test (``0.001`` messages per second, a few
handshakes or requests per minute): the outcome depends on counts, never on timing.
"""

from __future__ import annotations

import ftplib
import io
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from csms.app import CentralSystem
from csms.settings import LimitsSettings
from csms.uploads import UploadSlot
from tests.conftest import MakeCentral
from tests.logcapture import json_logging
from tests.metrics.helpers import scrape

NEVER = 0.001
"""A rate (per second) that refills nothing within a test."""


async def limited(
    make_central: MakeCentral, settings: dict[str, Any] | None = None, **limits: Any
) -> CentralSystem:
    """A central system with ``[limits]`` ``limits`` (other limits at their defaults)."""
    return await make_central(settings={"limits": LimitsSettings(**limits), **(settings or {})})


async def refusals(central: CentralSystem, limit: str) -> float:
    """``csms_limit_refusals_total{limit}`` as ``GET /metrics`` shows it."""
    return (await scrape(central)).value("csms_limit_refusals_total", limit=limit)


class JsonLogs:
    """The JSON log lines written since the fixture started."""

    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    def lines(self, event: str | None = None) -> list[dict[str, Any]]:
        found = [json.loads(line) for line in self.stream.getvalue().splitlines()
                 if line.startswith("{")]
        return [line for line in found if event is None or line.get("event") == event]


@pytest.fixture
def json_logs() -> Iterator[JsonLogs]:
    """Route structlog and the stdlib through one JSON renderer into a buffer."""
    stream = io.StringIO()
    with json_logging(stream):
        yield JsonLogs(stream)


def ftp_commands(slot: UploadSlot, commands: list[str], data: bytes) -> list[str]:
    """Log in with the slot's FTP credentials and run ``STOR name`` (sending ``data``) or
    other commands; the replies (refusals as their text)."""
    assert slot.ftp_location is not None
    location = urlsplit(slot.ftp_location)
    assert location.hostname and location.port and location.username and location.password
    replies = []
    with ftplib.FTP() as ftp:
        ftp.connect(location.hostname, location.port, timeout=5)
        ftp.login(location.username, location.password)
        for command in commands:
            try:
                if command.startswith("STOR "):
                    replies.append(ftp.storbinary(command, io.BytesIO(data)))
                else:
                    replies.append(ftp.sendcmd(command))
            except ftplib.error_perm as exc:
                replies.append(str(exc))
    return replies
