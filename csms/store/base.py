"""What every part of the store shares: the database and dialect-aware upserts.

:class:`~csms.store.repository.Store` is assembled from one mixin per concern (events and
stations in ``repository``, runs, logs, tokens, reports, webhooks in their own modules); each
mixin builds on :class:`StoreBase`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite

from csms.clock import utc_now as utc_now
from csms.store.database import Database

Upsert = postgresql.Insert | sqlite.Insert


class StoreBase:
    """The database handle and the helpers the store mixins share."""

    db: Database

    def _insert(self, model: type[Any]) -> Upsert:
        """``INSERT`` with ``ON CONFLICT`` support for this database."""
        if self.db.dialect_name == "postgresql":
            return postgresql.insert(model)
        return sqlite.insert(model)
