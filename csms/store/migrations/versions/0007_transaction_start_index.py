"""Transactions by station and start time: a resent 1.6 StartTransaction is found, not
opened twice.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_transactions_station_id_started_at"), "transactions",
                    ["station_id", "started_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_transactions_station_id_started_at"), table_name="transactions")
