"""Every diagnostics log a charger uploads: indexed, read for known fault signatures,
announced, and handed to the diagnostics engine.

Runs on every node (a charger uploads to the node that handed out the location): the log is
listed under ``/api/v1/logs`` with its findings wherever it lands.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from csms.bus import EventBus, Notice, Topic
from csms.store import Store
from csms.uploads.registry import UploadedLog
from csms.uploads.service import Uploads
from diagnostics import SignatureSet
from diagnostics.serde import encode

MAX_LOG_BYTES = 8 * 1024 * 1024
"""Largest part of a log read for signature matching."""

Analysed = Callable[[UploadedLog, list[Any]], None]


class LogIndexer:
    """Listens to the upload endpoints (a :class:`~csms.components.Component`)."""

    def __init__(self, store: Store, bus: EventBus, uploads: Uploads,
                 signatures: SignatureSet | None) -> None:
        self.store = store
        self.bus = bus
        self.uploads = uploads
        self.signatures = signatures
        self.listeners: list[Analysed] = []
        self._remove: Callable[[], None] | None = None

    async def start(self) -> None:
        """Start listening."""
        self._remove = self.uploads.registry.add_listener(self._on_upload)

    async def stop(self) -> None:
        """Stop listening."""
        if self._remove is not None:
            self._remove()
            self._remove = None

    async def _on_upload(self, upload: UploadedLog) -> None:
        log_id = await self.store.save_log_file(
            station_id=upload.station_id, request_id=upload.request_id,
            protocol=str(upload.protocol), path=str(upload.path),
            filename_as_sent=upload.filename_as_sent, size=upload.size, sha256=upload.sha256,
            received_at=upload.received_at,
        )
        meta = {"log_id": log_id, "request_id": upload.request_id, "size": upload.size,
                "protocol": str(upload.protocol)}
        self.bus.publish(Notice(Topic.LOG, "uploaded", upload.station_id, meta))
        findings: list[Any] = []
        if self.signatures is not None:
            text = await asyncio.to_thread(_read_text, upload.path)
            findings = self.signatures.match(text)
        encoded = [encode(type(f), f) for f in findings]
        await self.store.set_log_findings(log_id, encoded)
        self.bus.publish(Notice(Topic.LOG, "analysed", upload.station_id,
                                {**meta, "findings": encoded}))
        for listener in self.listeners:
            listener(upload, findings)


def _read_text(path: Path) -> str:
    with path.open("rb") as handle:
        return handle.read(MAX_LOG_BYTES).decode("utf-8", errors="replace")
