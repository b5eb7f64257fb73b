"""PostgreSQL hot-path writes: one ``unnest`` statement per table and group-commit batch.

The hot kinds of a busy fleet (Heartbeat, StatusNotification, MeterValues: OCPP 1.6 §4.6,
§4.9, §4.7; 2.0.1 G02, G01, J01) are written as ``INSERT ... SELECT FROM unnest($1::type[],
...)``: the SQL text is the same whatever the batch size, so asyncpg prepares it once per
connection and sends each batch as a few typed arrays, without SQLAlchemy compiling a
multi-row ``VALUES`` of a new shape per batch size. They run with
:meth:`~sqlalchemy.ext.asyncio.AsyncConnection.exec_driver_sql` on the session's own
connection, so they stay in its transaction. The statements do what the SQLAlchemy ones of
:class:`~csms.store.repository.Store` do on SQLite (a test writes the same batch both ways).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

TOUCH_SQL = """
INSERT INTO stations (id, boot_count, last_seen_at, connected, registered_at, updated_at)
SELECT u.id, 0, u.at, false, u.at, u.at
FROM unnest($1::varchar[], $2::timestamptz[]) AS u(id, at)
ON CONFLICT (id) DO UPDATE SET last_seen_at = CASE
    WHEN stations.last_seen_at IS NULL OR stations.last_seen_at < excluded.last_seen_at
    THEN excluded.last_seen_at ELSE stations.last_seen_at END
"""

CONNECTOR_COLUMNS = ("station_id", "evse_id", "connector_id", "status", "raw_status",
                     "error_code", "vendor_id", "vendor_error_code", "info", "updated_at")
CONNECTOR_SQL = """
INSERT INTO connectors (station_id, evse_id, connector_id, status, raw_status, error_code,
                        vendor_id, vendor_error_code, info, updated_at)
SELECT * FROM unnest($1::varchar[], $2::integer[], $3::integer[], $4::varchar[],
                     $5::varchar[], $6::varchar[], $7::varchar[], $8::varchar[],
                     $9::varchar[], $10::timestamptz[])
ON CONFLICT (station_id, evse_id, connector_id) DO UPDATE SET
    status = excluded.status, raw_status = excluded.raw_status,
    error_code = excluded.error_code, vendor_id = excluded.vendor_id,
    vendor_error_code = excluded.vendor_error_code, info = excluded.info,
    updated_at = excluded.updated_at
WHERE connectors.updated_at <= excluded.updated_at
"""

HISTORY_COLUMNS = ("station_id", "evse_id", "connector_id", "status", "raw_status",
                   "error_code", "vendor_error_code", "info", "station_time", "at")
HISTORY_SQL = """
INSERT INTO status_history (station_id, evse_id, connector_id, status, raw_status,
                            error_code, vendor_error_code, info, station_time, at)
SELECT * FROM unnest($1::varchar[], $2::integer[], $3::integer[], $4::varchar[],
                     $5::varchar[], $6::varchar[], $7::varchar[], $8::varchar[],
                     $9::timestamptz[], $10::timestamptz[])
"""

READING_COLUMNS = ("station_id", "transaction_id", "evse_id", "connector_id", "timestamp",
                   "measurand", "value", "unit", "phase", "context", "location")
READING_SQL = """
INSERT INTO meter_readings (station_id, transaction_pk, evse_id, connector_id, timestamp,
                            measurand, value, unit, phase, context, location)
SELECT u.station_id, t.id, u.evse_id, u.connector_id, u.timestamp, u.measurand, u.value,
       u.unit, u.phase, u.context, u.location
FROM unnest($1::varchar[], $2::varchar[], $3::integer[], $4::integer[], $5::timestamptz[],
            $6::varchar[], $7::double precision[], $8::varchar[], $9::varchar[],
            $10::varchar[], $11::varchar[])
     WITH ORDINALITY AS u(station_id, transaction_id, evse_id, connector_id, timestamp,
                          measurand, value, unit, phase, context, location, n)
LEFT JOIN transactions AS t
       ON t.station_id = u.station_id AND t.transaction_id = u.transaction_id
ORDER BY u.n
"""
"""Readings in the order given, each with the key of its station's transaction (NULL when
the transaction is unknown)."""


TRANSACTION_KEYS_SQL = """
SELECT nextval(pg_get_serial_sequence('transactions', 'id')) FROM generate_series(1, $1)
"""
"""Keys for new transactions, drawn from the sequence of ``transactions.id``."""

OPEN_COLUMNS = ("id", "station_id", "transaction_id", "evse_id", "connector_id", "id_token",
                "meter_start_wh", "started_at")
OPEN_SQL = """
INSERT INTO transactions (id, station_id, transaction_id, evse_id, connector_id, id_token,
                          meter_start_wh, started_at)
SELECT * FROM unnest($1::integer[], $2::varchar[], $3::varchar[], $4::integer[],
                     $5::integer[], $6::text[], $7::double precision[], $8::timestamptz[])
ON CONFLICT (station_id, transaction_id) DO NOTHING
RETURNING id
"""
"""1.6 transactions opened by the CSMS, named after their keys; a name the station already
uses is skipped (no row returned for it)."""


def columns(rows: Sequence[dict[str, Any]], names: Sequence[str]) -> tuple[list[Any], ...]:
    """The rows (dicts) as one list per column, in ``names`` order, text made storable as
    :class:`~csms.store.types.StationText` makes it (PostgreSQL refuses NUL characters)."""
    return tuple([_storable(row[name]) for row in rows] for name in names)


def _storable(value: Any) -> Any:
    if type(value) is str and "\x00" in value:
        return value.replace("\x00", "\ufffd")
    return value


async def touch(connection: AsyncConnection, seen: dict[str, datetime]) -> None:
    """Create stations on first sight and move ``last_seen_at`` forward (never back)."""
    await connection.exec_driver_sql(TOUCH_SQL, (list(seen), list(seen.values())))


async def connectors(connection: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Upsert each connector's latest status (one row per connector; a late one never wins)."""
    await connection.exec_driver_sql(CONNECTOR_SQL, columns(rows, CONNECTOR_COLUMNS))


async def history(connection: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Append status-history rows."""
    await connection.exec_driver_sql(HISTORY_SQL, columns(rows, HISTORY_COLUMNS))


async def readings(connection: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Append meter readings (rows name their transaction by the station's id for it)."""
    await connection.exec_driver_sql(READING_SQL, columns(rows, READING_COLUMNS))


async def transaction_keys(connection: AsyncConnection, count: int) -> list[int]:
    """``count`` new keys of ``transactions`` (never reused, as the table's own)."""
    result = await connection.exec_driver_sql(TRANSACTION_KEYS_SQL, (count,))
    return [key for (key,) in result.all()]


async def open_transactions(connection: AsyncConnection, rows: Sequence[dict[str, Any]]
                            ) -> set[int]:
    """Insert the transactions; the keys of those inserted (a row whose ``transaction_id``
    the station already uses is not)."""
    result = await connection.exec_driver_sql(OPEN_SQL, columns(rows, OPEN_COLUMNS))
    return {key for (key,) in result.all()}
