"""The central system's clock."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """The current time, timezone-aware UTC (what every table stores and OCPP sends)."""
    return datetime.now(UTC)
