"""Photo checks: the real content decides (JPEG, PNG or WebP), never the file name or the
declared type; photos are stored under server-chosen names only."""

from __future__ import annotations

import io
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

FORMATS: dict[str, tuple[str, str]] = {
    "JPEG": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "WEBP": ("image/webp", "webp"),
}
"""Accepted Pillow formats: their content type and the extension files get."""
MAX_PIXELS = 50_000_000
"""Largest image accepted, in pixels (a decompression bomb is refused before decoding)."""


class PhotoRejected(Exception):
    """A photo is refused: ``status`` is the HTTP status (413 too large, 415 wrong type)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Photo:
    """A checked photo, ready to store."""

    data: bytes
    content_type: str
    extension: str
    width: int
    height: int

    @property
    def size(self) -> int:
        """Bytes."""
        return len(self.data)


def check_photo(data: bytes, *, max_bytes: int, label: str = "photo") -> Photo:
    """Check one photo (blocking: run it in a thread). Raises :class:`PhotoRejected`."""
    if len(data) > max_bytes:
        raise PhotoRejected(413, f"{label} is {len(data)} bytes, more than {max_bytes}")
    if not data:
        raise PhotoRejected(415, f"{label} is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=tuple(FORMATS)) as image:
                kind = image.format
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise PhotoRejected(
                        413, f"{label} is {width}x{height} pixels, more than {MAX_PIXELS}")
                image.verify()
    except PhotoRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PhotoRejected(413, f"{label} has too many pixels") from exc
    except UnidentifiedImageError as exc:
        raise PhotoRejected(415, f"{label} is not a JPEG, PNG or WebP image") from exc
    except Exception as exc:  # Pillow raises many types for a damaged file
        raise PhotoRejected(415, f"{label} is a damaged image ({type(exc).__name__})") from exc
    if kind not in FORMATS:  # pragma: no cover - ``formats=`` already restricts it
        raise PhotoRejected(415, f"{label} is not a JPEG, PNG or WebP image")
    content_type, extension = FORMATS[kind]
    return Photo(data, content_type, extension, width, height)


def store_photos(root: Path, report_id: str, photos: list[Photo]) -> list[dict[str, object]]:
    """Write ``photos`` as ``root/<report_id>/<n>.<ext>`` (n from 1); returns what the report
    record keeps of each (``path`` relative to ``root``). Blocking: run it in a thread."""
    folder = root / report_id
    folder.mkdir(parents=True, exist_ok=True)
    items: list[dict[str, object]] = []
    for n, photo in enumerate(photos, start=1):
        name = f"{n}.{photo.extension}"
        (folder / name).write_bytes(photo.data)
        items.append({
            "n": n, "name": name, "content_type": photo.content_type, "size": photo.size,
            "width": photo.width, "height": photo.height, "path": f"{report_id}/{name}",
        })
    return items


def remove_photos(root: Path, report_id: str) -> None:
    """Remove a report's photo folder (when the report could not be stored)."""
    shutil.rmtree(root / report_id, ignore_errors=True)
