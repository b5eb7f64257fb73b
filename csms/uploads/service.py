"""The upload service both servers use: slots (registry) + files (storage) + the clock.

::

    uploads = Uploads.from_config(config, data_dir / "uploads", on_upload=engine_callback)
    slot = uploads.open("CP-1", request_id=7)            # slot.http_location / ftp_location
    async with await uploads.begin(token, "http") as attempt:   # SlotRefused -> 404
        await attempt.write(chunk)                        # UploadTooLarge -> 413
        uploaded = await attempt.finish("diag.zip")       # EmptyUpload -> 400
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from types import TracebackType

from csms.clock import utc_now
from csms.logs import get_logger
from csms.uploads.config import UploadConfig
from csms.uploads.registry import (
    Protocol,
    Refusal,
    UploadedLog,
    UploadEndpoints,
    UploadListener,
    UploadRegistry,
    UploadSlot,
)
from csms.uploads.storage import UploadStorage, UploadWriter

log = get_logger("csms.uploads")

Clock = Callable[[], datetime]
RefusalListener = Callable[[Protocol, str], None]
"""Told ``(protocol, reason)``: a :class:`Refusal` value, or ``"rate"``."""
RATE_REFUSAL = "rate"
"""The refusal reason of an upload connection over ``limits.uploads_per_minute`` (FTP)."""
MAX_FILENAME_METADATA = 1024
"""Characters of the charger's file name kept as metadata."""


class Uploads:
    """Opens slots and runs upload attempts against them."""

    def __init__(
        self,
        registry: UploadRegistry,
        storage: UploadStorage,
        *,
        slot_ttl: float = 3600.0,
        clock: Clock = utc_now,
    ) -> None:
        self.registry = registry
        self.storage = storage
        self.slot_ttl = slot_ttl
        self.clock = clock
        self.refusal_listeners: list[RefusalListener] = []
        """Told of every request refused for its credentials (unknown, used, expired, busy
        token or FTP login) or its rate (FTP): the endpoints call :meth:`refused`."""

    @classmethod
    def from_config(
        cls,
        config: UploadConfig,
        root: Path,
        *,
        http_port: int = 8080,
        on_upload: UploadListener | None = None,
        clock: Clock = utc_now,
    ) -> Uploads:
        """Registry and storage from the ``[uploads]`` settings; files under ``root``
        (``{data_dir}/uploads``). Update ``registry.endpoints`` ports once servers are bound."""
        endpoints = UploadEndpoints(
            public_host=config.public_host,
            http_port=http_port,
            ftp_port=config.ftp_port if config.ftp_enabled else None,
            http_base_url=config.http_base_url,
        )
        registry = UploadRegistry(endpoints, on_upload=on_upload, max_attempts=config.max_attempts)
        storage = UploadStorage(root, max_bytes=config.max_bytes, clock=clock)
        return cls(registry, storage, slot_ttl=config.slot_ttl, clock=clock)

    @property
    def max_bytes(self) -> int:
        return self.storage.max_bytes

    def open(self, station_id: str, request_id: int, *, ttl: float | None = None) -> UploadSlot:
        """A one-time slot; give ``slot.http_location`` or ``slot.ftp_location`` to the charger."""
        return self.registry.open(
            station_id, request_id, now=self.clock(), ttl=ttl if ttl is not None else self.slot_ttl
        )

    def refused(self, protocol: Protocol, reason: Refusal | str) -> None:
        """An endpoint refused a request for its credentials (a :class:`Refusal`) or its rate
        (:data:`RATE_REFUSAL`): tell the listeners (metrics)."""
        for listener in self.refusal_listeners:
            listener(protocol, reason)

    def lookup(self, key: str, protocol: Protocol) -> UploadSlot | None:
        """The slot of an HTTP token or an FTP user name."""
        if protocol == "ftp":
            return self.registry.by_ftp_user(key)
        return self.registry.get(key)

    async def begin(self, key: str, protocol: Protocol) -> UploadAttempt:
        """Claim the slot of ``key`` (token or FTP user) for one attempt.

        Raises :class:`~csms.uploads.registry.SlotRefused` (unknown, expired, used, busy).
        """
        slot = self.registry.claim(self.lookup(key, protocol), now=self.clock())
        try:
            writer = await self.storage.begin(slot.station_id, slot.request_id)
        except BaseException:
            self.registry.release(slot)
            raise
        return UploadAttempt(self, slot, writer, protocol)


class UploadAttempt:
    """One upload into a claimed slot. Leaving the context without :meth:`finish` (or with an
    error) discards the partial file and gives the slot back for another attempt."""

    def __init__(
        self, uploads: Uploads, slot: UploadSlot, writer: UploadWriter, protocol: Protocol
    ) -> None:
        self.uploads = uploads
        self.slot = slot
        self.protocol: Protocol = protocol
        self._writer = writer
        self._over = False

    @property
    def size(self) -> int:
        return self._writer.size

    async def write(self, data: bytes) -> None:
        """Append data; :class:`~csms.uploads.storage.UploadTooLarge` past the limit."""
        try:
            await self._writer.write(data)
        except BaseException:
            await self.abort()
            raise

    async def finish(self, filename_as_sent: str | None) -> UploadedLog:
        """Store the file and close the slot; the listeners hear of it once."""
        if filename_as_sent is not None:
            filename_as_sent = filename_as_sent[:MAX_FILENAME_METADATA]
        try:
            stored = await self._writer.commit(filename_as_sent)
        except BaseException:
            await self.abort()
            raise
        self._over = True
        uploaded = UploadedLog(
            station_id=self.slot.station_id,
            request_id=self.slot.request_id,
            path=stored.path,
            size=stored.size,
            sha256=stored.sha256,
            protocol=self.protocol,
            filename_as_sent=filename_as_sent,
            received_at=self.uploads.clock(),
        )
        log.info(
            "log_uploaded",
            station_id=uploaded.station_id,
            request_id=uploaded.request_id,
            protocol=uploaded.protocol,
            size=uploaded.size,
            sha256=uploaded.sha256,
            path=str(uploaded.path),
        )
        self.uploads.registry.complete(self.slot, uploaded)
        return uploaded

    async def abort(self, reason: str | None = None) -> None:
        """Discard the partial file and release the slot (idempotent)."""
        if self._over:
            return
        self._over = True
        try:
            await self._writer.abort()
        finally:
            self.uploads.registry.release(self.slot)
            log.info(
                "log_upload_failed",
                station_id=self.slot.station_id,
                request_id=self.slot.request_id,
                protocol=self.protocol,
                received=self._writer.size,
                reason=reason,
            )

    async def __aenter__(self) -> UploadAttempt:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.abort(None if exc is None else type(exc).__name__)


def passive_address(config: UploadConfig) -> str | None:
    """The IPv4 address to announce in PASV replies: the configured one, else ``public_host``
    when it is an IPv4 address (otherwise the address the control connection came in on)."""
    if config.ftp_passive_address:
        return config.ftp_passive_address
    try:
        if ipaddress.ip_address(config.public_host).version == 4:
            return config.public_host
    except ValueError:
        pass
    return None
