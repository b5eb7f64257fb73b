"""What the API routers are built from: the central system's components, passed in."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from csms.automation import DiagnosticsPort
from csms.bus import EventBus
from csms.protocol.registry import SessionRegistry
from csms.settings import Settings
from csms.store import Store
from csms.uploads.service import Uploads
from diagnostics.commands import CommandOutcome, StationCommand

Execute = Callable[[str, StationCommand], Awaitable[CommandOutcome]]


@dataclass(slots=True)
class ApiContext:
    """The components behind the API (one per central system; tests build their own)."""

    settings: Settings
    store: Store
    bus: EventBus
    execute: Execute
    """Send a command to a station (wherever it is connected) and get its outcome."""
    registry: SessionRegistry | None = None
    runner: DiagnosticsPort | None = None
    """``None`` when diagnostics are disabled (ticket transitions and diagnose now: 503)."""
    uploads: Uploads | None = None
    extras: dict[str, object] = field(default_factory=dict)
    """Components added by later work (metrics, webhook dispatcher, MQTT publisher), by name."""

    @property
    def data_dir(self) -> Path:
        """Where files (uploads, report photos) are kept."""
        return self.settings.data_dir
