"""Diagnostics log uploads: one-time slots, safe storage, HTTP (see :mod:`csms.http.uploads`)
and FTP (:mod:`csms.uploads.ftp`) endpoints."""

from csms.uploads.config import UploadConfig
from csms.uploads.registry import (
    Refusal,
    SlotRefused,
    SlotState,
    UploadedLog,
    UploadEndpoints,
    UploadListener,
    UploadRegistry,
    UploadSlot,
)
from csms.uploads.service import UploadAttempt, Uploads, passive_address
from csms.uploads.storage import (
    EmptyUpload,
    StoredFile,
    UploadStorage,
    UploadTooLarge,
    safe_filename,
    safe_station_dir,
)

__all__ = [
    "EmptyUpload",
    "Refusal",
    "SlotRefused",
    "SlotState",
    "StoredFile",
    "UploadAttempt",
    "UploadConfig",
    "UploadEndpoints",
    "UploadListener",
    "UploadRegistry",
    "UploadSlot",
    "UploadStorage",
    "UploadTooLarge",
    "UploadedLog",
    "Uploads",
    "passive_address",
    "safe_filename",
    "safe_station_dir",
]
