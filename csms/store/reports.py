"""Driver fault reports (filled in by the driver report work)."""

from __future__ import annotations

from csms.store.base import StoreBase


class ReportQueries(StoreBase):
    """Driver reports: create, find by tracking token hash, follow the diagnosis."""
