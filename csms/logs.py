"""Structured logging with structlog, the stdlib loggers of ``ocpp`` and ``websockets`` included.

Context bound with :func:`structlog.contextvars.bind_contextvars` (the charger id for a
connection, the message id for a frame) appears on every line, also on lines logged by the
libraries through the stdlib, because one :class:`structlog.stdlib.ProcessorFormatter` renders
both.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog

from csms.settings import LoggingSettings

_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


class _StandardErrorHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of each line (as the stdlib's
    last-resort handler does), so a replaced or closed standard error is never written to."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        """Ignored: the stream is always the current standard error."""


def configure_logging(settings: LoggingSettings, stream: TextIO | None = None) -> None:
    """Route structlog and the stdlib root logger through one renderer (JSON or console).

    Lines go to ``stream`` (standard error by default).
    """
    renderer: Any
    if settings.format == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        # Plain tracebacks: rich ones (when rich is installed) take a long time to render and
        # would stall the event loop on every logged exception.
        renderer = structlog.dev.ConsoleRenderer(
            colors=(stream or sys.stderr).isatty(),
            exception_formatter=structlog.dev.plain_traceback,
        )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream) if stream is not None else _StandardErrorHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    level = getattr(logging, settings.level.upper())
    root.setLevel(level)
    # The ocpp library logs every frame at INFO; keep that behind the `frames` switch.
    logging.getLogger("ocpp").setLevel(logging.DEBUG if settings.frames else logging.WARNING)
    # websockets logs handshake failures of port scanners at INFO/ERROR: keep warnings.
    logging.getLogger("websockets").setLevel(max(level, logging.WARNING))
    # Database drivers log every statement at DEBUG, from threads without our context.
    for noisy in ("aiosqlite", "asyncio", "sqlalchemy.engine", "alembic"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structlog logger named like a stdlib logger (``csms.server``...)."""
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
