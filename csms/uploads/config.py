"""Upload settings as a plain dataclass, so this package does not depend on ``csms.settings``.

The field names match the ``[uploads]`` settings group one to one:
``UploadConfig(**settings.uploads.model_dump())``.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class UploadConfig:
    """Where chargers upload diagnostics logs, and the limits that apply."""

    public_host: str = "127.0.0.1"
    """Host name or address chargers connect to (put into the locations we hand out)."""
    http_base_url: str | None = None
    """Overrides ``http://{public_host}:{http port}`` (e.g. behind a proxy or with TLS)."""
    ftp_enabled: bool = True
    ftp_host: str = "0.0.0.0"
    """Address the FTP server binds to (control and passive data connections)."""
    ftp_port: int = 2121
    ftp_passive_ports: tuple[int, int] | None = None
    """Inclusive range of passive data ports; ``None`` means ephemeral ports."""
    ftp_passive_address: str | None = None
    """IPv4 address announced in PASV replies (NAT); default: ``public_host`` if it is one."""
    max_bytes: int = 50 * MIB
    slot_ttl: float = 3600.0
    """Seconds an upload slot stays open for its one upload."""
    max_attempts: int = 1
    """Requests an upload location is good for (1: one request, whatever its outcome)."""
