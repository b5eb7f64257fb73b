"""Initial schema.

Stations, connectors, status history, transactions, meter readings, events and the
connection log.

Revision ID: 0001
Revises:
Create Date: 2025-01-01 00:00:00

Hand-written, checked against the models by ``tests/store/test_migrations.py``. Times are
``timestamptz`` on PostgreSQL; the append-only tables have 64-bit keys there (on SQLite the
key stays ``INTEGER PRIMARY KEY``, the 64-bit rowid). ``transactions`` uses SQLite's
AUTOINCREMENT so that a 1.6 transaction id is never handed out twice.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _big_key() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _station_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["station_id"],
        ["stations.id"],
        name=op.f(f"fk_{table}_station_id_stations"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "stations",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("vendor", sa.Text(), nullable=True),
        sa.Column("model", sa.Text(), nullable=True),
        sa.Column("serial_number", sa.Text(), nullable=True),
        sa.Column("firmware_version", sa.Text(), nullable=True),
        sa.Column("protocol", sa.String(length=16), nullable=True),
        sa.Column("location", sa.Text(), nullable=True),
        sa.Column("owner", sa.Text(), nullable=True),
        sa.Column("site", sa.Text(), nullable=True),
        sa.Column("last_boot_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_boot_reason", sa.Text(), nullable=True),
        sa.Column("boot_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("connected", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("connected_node", sa.String(length=255), nullable=True),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stations")),
    )

    op.create_table(
        "connectors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("station_id", sa.String(length=64), nullable=False),
        sa.Column("evse_id", sa.Integer(), nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("raw_status", sa.Text(), nullable=False),
        sa.Column("error_code", sa.Text(), nullable=True),
        sa.Column("vendor_id", sa.Text(), nullable=True),
        sa.Column("vendor_error_code", sa.Text(), nullable=True),
        sa.Column("info", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _station_fk("connectors"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connectors")),
        sa.UniqueConstraint(
            "station_id",
            "evse_id",
            "connector_id",
            name=op.f("uq_connectors_station_id_evse_id_connector_id"),
        ),
    )

    op.create_table(
        "status_history",
        sa.Column("id", _big_key(), nullable=False),
        sa.Column("station_id", sa.String(length=64), nullable=False),
        sa.Column("evse_id", sa.Integer(), nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("raw_status", sa.Text(), nullable=False),
        sa.Column("error_code", sa.Text(), nullable=True),
        sa.Column("vendor_error_code", sa.Text(), nullable=True),
        sa.Column("info", sa.Text(), nullable=True),
        sa.Column("station_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        _station_fk("status_history"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_status_history")),
    )
    op.create_index(
        op.f("ix_status_history_station_id_at"), "status_history", ["station_id", "at"]
    )

    op.create_table(
        "transactions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("station_id", sa.String(length=64), nullable=False),
        sa.Column("transaction_id", sa.String(length=64), nullable=False),
        sa.Column("evse_id", sa.Integer(), nullable=True),
        sa.Column("connector_id", sa.Integer(), nullable=True),
        sa.Column("id_token", sa.Text(), nullable=True),
        sa.Column("meter_start_wh", sa.Float(), nullable=True),
        sa.Column("meter_stop_wh", sa.Float(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stop_reason", sa.Text(), nullable=True),
        sa.Column("charging_state", sa.Text(), nullable=True),
        sa.Column("energy_wh", sa.Float(), nullable=True),
        _station_fk("transactions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transactions")),
        sa.UniqueConstraint(
            "station_id",
            "transaction_id",
            name=op.f("uq_transactions_station_id_transaction_id"),
        ),
        sqlite_autoincrement=True,
    )

    op.create_table(
        "meter_readings",
        sa.Column("id", _big_key(), nullable=False),
        sa.Column("station_id", sa.String(length=64), nullable=False),
        sa.Column("transaction_pk", sa.Integer(), nullable=True),
        sa.Column("evse_id", sa.Integer(), nullable=True),
        sa.Column("connector_id", sa.Integer(), nullable=True),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("measurand", sa.Text(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("unit", sa.Text(), nullable=True),
        sa.Column("phase", sa.Text(), nullable=True),
        sa.Column("context", sa.Text(), nullable=True),
        sa.Column("location", sa.Text(), nullable=True),
        _station_fk("meter_readings"),
        sa.ForeignKeyConstraint(
            ["transaction_pk"],
            ["transactions.id"],
            name=op.f("fk_meter_readings_transaction_pk_transactions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meter_readings")),
    )
    op.create_index(
        op.f("ix_meter_readings_station_id_timestamp"),
        "meter_readings",
        ["station_id", "timestamp"],
    )
    op.create_index(
        op.f("ix_meter_readings_transaction_pk"), "meter_readings", ["transaction_pk"]
    )

    op.create_table(
        "events",
        sa.Column("id", _big_key(), nullable=False),
        sa.Column("station_id", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("component", sa.Text(), nullable=True),
        sa.Column("variable", sa.Text(), nullable=True),
        sa.Column("code", sa.Text(), nullable=True),
        sa.Column("vendor_code", sa.Text(), nullable=True),
        sa.Column("evse_id", sa.Integer(), nullable=True),
        sa.Column("connector_id", sa.Integer(), nullable=True),
        sa.Column("cleared", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        _station_fk("events"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index(op.f("ix_events_station_id_at"), "events", ["station_id", "at"])

    # No foreign key: refused connections of unknown chargers are logged too.
    op.create_table(
        "connection_log",
        sa.Column("id", _big_key(), nullable=False),
        sa.Column("station_id", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("protocol", sa.String(length=16), nullable=True),
        sa.Column("remote_address", sa.Text(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connection_log")),
    )
    op.create_index(
        op.f("ix_connection_log_station_id_at"), "connection_log", ["station_id", "at"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_connection_log_station_id_at"), table_name="connection_log")
    op.drop_table("connection_log")
    op.drop_index(op.f("ix_events_station_id_at"), table_name="events")
    op.drop_table("events")
    op.drop_index(op.f("ix_meter_readings_transaction_pk"), table_name="meter_readings")
    op.drop_index(op.f("ix_meter_readings_station_id_timestamp"), table_name="meter_readings")
    op.drop_table("meter_readings")
    op.drop_table("transactions")
    op.drop_index(op.f("ix_status_history_station_id_at"), table_name="status_history")
    op.drop_table("status_history")
    op.drop_table("connectors")
    op.drop_table("stations")
