"""The diagnostics engine state in station shards: only what changed is written per batch.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 03:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "engine_state_shards",
        sa.Column("state_key", sa.String(length=255), nullable=False),
        sa.Column("station_id", sa.String(length=64), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("state_key", "station_id", name=op.f("pk_engine_state_shards")),
    )


def downgrade() -> None:
    op.drop_table("engine_state_shards")
