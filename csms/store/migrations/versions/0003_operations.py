"""Operations surface: diagnostics runs, API tokens, driver reports, log files, webhook outbox.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 20:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _big_key() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _time(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "diagnostics_runs",
        sa.Column("run_id", sa.String(length=255), nullable=False),
        sa.Column("station_id", sa.String(length=64), nullable=False),
        sa.Column("connector", sa.Integer(), nullable=False),
        sa.Column("fault_class", sa.String(length=128), nullable=False),
        sa.Column("detection", sa.String(length=64), nullable=False),
        sa.Column("phase", sa.String(length=64), nullable=False),
        sa.Column("current_step", sa.String(length=128), nullable=True),
        sa.Column("outcome", sa.String(length=64), nullable=True),
        sa.Column("ticket_id", sa.String(length=255), nullable=True),
        sa.Column("node", sa.String(length=255), nullable=True),
        _time("started_at"),
        _time("updated_at"),
        _time("finished_at", nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_diagnostics_runs")),
    )
    op.create_index(op.f("ix_diagnostics_runs_station_id_started_at"), "diagnostics_runs",
                    ["station_id", "started_at"])
    op.create_index(op.f("ix_diagnostics_runs_outcome"), "diagnostics_runs", ["outcome"])
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("secret_hash", sa.String(length=128), nullable=False),
        _time("created_at"),
        _time("last_used_at", nullable=True),
        _time("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
    )
    op.create_table(
        "driver_reports",
        sa.Column("report_id", sa.String(length=64), nullable=False),
        sa.Column("station_id", sa.String(length=64), nullable=False),
        sa.Column("connector", sa.Integer(), nullable=True),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("contact", sa.Text(), nullable=True),
        sa.Column("tracking_hash", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("run_id", sa.String(length=255), nullable=True),
        sa.Column("ticket_id", sa.String(length=255), nullable=True),
        sa.Column("photos", sa.JSON(), nullable=False),
        sa.Column("history", sa.JSON(), nullable=False),
        sa.Column("client_address", sa.String(length=64), nullable=True),
        _time("created_at"),
        _time("updated_at"),
        sa.PrimaryKeyConstraint("report_id", name=op.f("pk_driver_reports")),
        sa.UniqueConstraint("tracking_hash", name=op.f("uq_driver_reports_tracking_hash")),
    )
    op.create_index(op.f("ix_driver_reports_station_id_created_at"), "driver_reports",
                    ["station_id", "created_at"])
    op.create_table(
        "log_files",
        sa.Column("id", _big_key(), nullable=False),
        sa.Column("station_id", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("protocol", sa.String(length=8), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("filename_as_sent", sa.Text(), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("findings", sa.JSON(), nullable=False),
        _time("received_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_log_files")),
    )
    op.create_index(op.f("ix_log_files_station_id_received_at"), "log_files",
                    ["station_id", "received_at"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", _big_key(), nullable=False),
        sa.Column("ticket_id", sa.String(length=255), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        _time("next_attempt_at"),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        _time("created_at"),
        _time("delivered_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
    )
    op.create_index(op.f("ix_webhook_deliveries_status_next_attempt_at"), "webhook_deliveries",
                    ["status", "next_attempt_at"])
    op.create_index(op.f("ix_webhook_deliveries_ticket_id"), "webhook_deliveries",
                    ["ticket_id"])


def downgrade() -> None:
    op.drop_table("webhook_deliveries")
    op.drop_table("log_files")
    op.drop_table("driver_reports")
    op.drop_table("api_tokens")
    op.drop_table("diagnostics_runs")
