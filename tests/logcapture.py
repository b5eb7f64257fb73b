"""The production log set-up (JSON lines) into a stream, for tests that read the logs."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

import structlog

from csms.logs import configure_logging
from csms.settings import LoggingSettings


@contextmanager
def json_logging(stream: TextIO) -> Iterator[None]:
    """Route structlog and the stdlib through the JSON renderer into ``stream``; afterwards
    put the root logger's handlers and level back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging(LoggingSettings(format="json", level="info"), stream)
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.reset_defaults()
