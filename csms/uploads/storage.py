"""Uploaded logs on disk: ``{root}/{station}/{request_id}-{timestamp}-{name}``.

Nothing the charger sends becomes a path: the station directory and the file name are
sanitised (ASCII letters, digits, ``.``, ``_``, ``-``; no leading dot; bounded length; a short
hash keeps distinct station ids apart), the charger's own file name is kept only as metadata.
A file is written to a hidden temporary name in its final directory, counted against
``max_bytes`` as it arrives (too large: the partial file is deleted), hashed with SHA-256,
fsynced, then linked into place without overwriting anything.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import secrets
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import BinaryIO

from csms.logs import get_logger

log = get_logger("csms.uploads")

MAX_NAME_LENGTH = 100
MAX_STATION_DIR_LENGTH = 64
DEFAULT_NAME = "log"
PARTIAL_PREFIX = ".upload-"
PARTIAL_SUFFIX = ".part"
_FLUSH_BYTES = 1 << 20
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class UploadTooLarge(Exception):
    """More than ``limit`` bytes were sent."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"upload larger than {limit} bytes")
        self.limit = limit


class EmptyUpload(Exception):
    """Nothing was sent."""

    def __init__(self) -> None:
        super().__init__("empty upload")


def _ascii_safe(text: str) -> str:
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return _UNSAFE.sub("_", text)


def safe_filename(name: str | None, *, default: str = DEFAULT_NAME) -> str:
    """A file name that is safe on disk: the last path component of ``name``, sanitised.

    Backslashes count as separators; control and non-ASCII characters and anything but
    letters, digits, ``.``, ``_``, ``-`` become ``_``; no leading dot or dash; at most
    :data:`MAX_NAME_LENGTH` characters (the extension kept); ``default`` when nothing is left.
    """
    if not name:
        return default
    base = name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    base = _ascii_safe(base).lstrip("._-").rstrip(".")
    if not base:
        return default
    if len(base) > MAX_NAME_LENGTH:
        suffix = "".join(PurePosixPath(base).suffixes[-2:])
        if len(suffix) > 16:
            suffix = ""
        base = base[: MAX_NAME_LENGTH - len(suffix)].rstrip(".") + suffix
    return base


def safe_station_dir(station_id: str) -> str:
    """A directory name for a station id; ids that needed changes get a short hash suffix."""
    cleaned = _ascii_safe(station_id).lstrip("._-").rstrip(".")[:MAX_STATION_DIR_LENGTH]
    if cleaned == station_id and cleaned:
        return cleaned
    digest = hashlib.sha256(station_id.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"{cleaned or 'station'}-{digest}"


@dataclass(frozen=True, slots=True)
class StoredFile:
    path: Path
    size: int
    sha256: str


class UploadStorage:
    """Stores uploads under ``root`` with a size limit."""

    def __init__(
        self,
        root: Path,
        *,
        max_bytes: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if max_bytes < 1:
            raise ValueError("max_bytes must be positive")
        self.root = root
        self.max_bytes = max_bytes
        self.clock = clock

    def station_dir(self, station_id: str) -> Path:
        return self.root / safe_station_dir(station_id)

    async def begin(self, station_id: str, request_id: int) -> UploadWriter:
        """A writer for one upload; its temporary file is created in the station directory."""
        directory = self.station_dir(station_id)
        temp = directory / f"{PARTIAL_PREFIX}{secrets.token_hex(8)}{PARTIAL_SUFFIX}"

        def create() -> BinaryIO:
            directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
            return os.fdopen(fd, "wb")

        handle = await asyncio.to_thread(create)
        return UploadWriter(self, handle, temp, request_id)

    def remove_partials(self) -> int:
        """Delete temporary files left by a crash (call before accepting uploads)."""
        removed = 0
        if not self.root.is_dir():
            return 0
        for path in self.root.glob(f"*/{PARTIAL_PREFIX}*{PARTIAL_SUFFIX}"):
            path.unlink(missing_ok=True)
            removed += 1
        return removed


class UploadWriter:
    """One file being received. Use as an async context manager: left without
    :meth:`commit`, or on an error, the partial file is removed."""

    def __init__(self, storage: UploadStorage, handle: BinaryIO, temp: Path, request_id: int):
        self._storage = storage
        self._handle: BinaryIO | None = handle
        self._temp = temp
        self._request_id = request_id
        self._hash = hashlib.sha256()
        self._buffer = bytearray()
        self._size = 0
        self._done = False

    @property
    def size(self) -> int:
        return self._size

    async def write(self, data: bytes) -> None:
        """Append ``data``; :class:`UploadTooLarge` (partial file removed) past the limit."""
        if self._done:
            raise RuntimeError("upload already finished")
        if not data:
            return
        if self._size + len(data) > self._storage.max_bytes:
            await self.abort()
            raise UploadTooLarge(self._storage.max_bytes)
        self._size += len(data)
        self._hash.update(data)
        self._buffer += data
        if len(self._buffer) >= _FLUSH_BYTES:
            await self._flush()

    async def _flush(self) -> None:
        if self._buffer and self._handle is not None:
            chunk = bytes(self._buffer)
            self._buffer.clear()
            await asyncio.to_thread(self._handle.write, chunk)

    async def commit(self, filename_as_sent: str | None) -> StoredFile:
        """Move the file into place; :class:`EmptyUpload` (file removed) if nothing came."""
        if self._done:
            raise RuntimeError("upload already finished")
        if self._size == 0:
            await self.abort()
            raise EmptyUpload
        await self._flush()
        handle = self._handle
        assert handle is not None
        stamp = self._storage.clock().astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        stem = f"{self._request_id}-{stamp}"
        name = safe_filename(filename_as_sent)
        temp = self._temp

        def finish() -> Path:
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
            for n in range(1000):
                candidate = temp.parent / (f"{stem}-{name}" if n == 0 else f"{stem}-{n}-{name}")
                try:
                    os.link(temp, candidate)
                except FileExistsError:
                    continue
                os.unlink(temp)
                return candidate
            raise FileExistsError(f"no free file name for {stem}-{name}")  # pragma: no cover

        try:
            path = await asyncio.to_thread(finish)
        except BaseException:
            self._handle = None
            await self.abort()
            raise
        self._handle = None
        self._done = True
        return StoredFile(path=path, size=self._size, sha256=self._hash.hexdigest())

    async def abort(self) -> None:
        """Discard the partial file (idempotent)."""
        if self._done:
            return
        self._done = True
        self._buffer.clear()
        handle, self._handle = self._handle, None
        temp = self._temp

        def remove() -> None:
            if handle is not None:
                handle.close()
            temp.unlink(missing_ok=True)

        await asyncio.to_thread(remove)

    async def __aenter__(self) -> UploadWriter:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.abort()
