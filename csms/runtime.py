"""Process-wide tuning of the Python runtime for a server holding thousands of connections.

The cyclic garbage collector scans every tracked container object of a generation when it
runs. With CPython's default thresholds (700, 10, 10) a server holding 10,000 websocket
connections (hundreds of thousands of long-lived objects) runs a young collection every 700
allocations and a full one often enough that, during a reconnect storm, about half of its
CPU went to collections (py-spy attributed it to whatever allocated: ``Handle.__init__``,
``asyncio.shield``, SQLAlchemy's parameter dicts). Raising the thresholds and freezing what
exists once the server is up (``gc.freeze``: start-up objects are never scanned again) halved
the time to boot 10,000 chargers again after an outage (README, Scaling). Reference cycles
are still collected, only less often.
"""

from __future__ import annotations

import gc

import structlog

from csms.settings import RuntimeSettings

log = structlog.get_logger(__name__)


def tune_gc(settings: RuntimeSettings) -> None:
    """Apply ``runtime.gc_threshold`` (call at process start, before the server grows)."""
    if settings.gc_threshold is not None:
        gc.set_threshold(*settings.gc_threshold)


def freeze_startup_objects(settings: RuntimeSettings) -> None:
    """Move every object alive now to the permanent generation (``runtime.gc_freeze``):
    called once the server listens, so its modules, settings and tables are never scanned."""
    if settings.gc_freeze:
        gc.collect()
        gc.freeze()
        log.info("gc_frozen", objects=gc.get_freeze_count(), threshold=gc.get_threshold())
