"""PostgreSQL hot-path writes: ``unnest`` statements, a few per group-commit batch.

The hot kinds of a busy fleet (Heartbeat, StatusNotification, MeterValues: OCPP 1.6 §4.6,
§4.9, §4.7; 2.0.1 G02, G01, J01) are written as ``INSERT ... SELECT FROM unnest($1::type[],
...)``: the SQL text is the same whatever the batch size, so asyncpg prepares it once per
connection and sends each batch as a few typed arrays, without SQLAlchemy compiling a
multi-row ``VALUES`` of a new shape per batch size. They run with
:meth:`~sqlalchemy.ext.asyncio.AsyncConnection.exec_driver_sql` on the session's own
connection, so they stay in its transaction. Statements on different tables are joined into
one (data-modifying ``WITH`` parts, each with its own numbered parameters) to save round
trips. The statements do what the SQLAlchemy ones of :class:`~csms.store.repository.Store`
do on SQLite (a test writes the same batch both ways).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

TOUCH_SQL = """
WITH touched AS (
    INSERT INTO stations (id, boot_count, last_seen_at, connected, registered_at, updated_at)
    SELECT u.id, 0, u.at, false, u.at, u.at
    FROM unnest($1::varchar[], $2::timestamptz[]) AS u(id, at)
    ON CONFLICT (id) DO UPDATE SET last_seen_at = CASE
        WHEN stations.last_seen_at IS NULL OR stations.last_seen_at < excluded.last_seen_at
        THEN excluded.last_seen_at ELSE stations.last_seen_at END
)
SELECT txid_current()
"""
"""The stations' ``last_seen_at``, and the id of the transaction (the group commit's), with
which :func:`commit_status` can tell afterwards whether a commit whose answer was lost went
through."""

COMMIT_STATUS_SQL = "SELECT txid_status($1)"


def _arrays(first: int, *types: str) -> str:
    """``$first::type[], $first+1::type[], ...``: the typed array parameters of an
    ``unnest``, numbered from ``first`` (statements are joined into one, each with its own
    parameters)."""
    return ", ".join(f"${n}::{kind}[]" for n, kind in enumerate(types, first))


CONNECTOR_COLUMNS = ("station_id", "evse_id", "connector_id", "status", "raw_status",
                     "error_code", "vendor_id", "vendor_error_code", "info", "updated_at")


def _connector_sql(first: int) -> str:
    return f"""
INSERT INTO connectors (station_id, evse_id, connector_id, status, raw_status, error_code,
                        vendor_id, vendor_error_code, info, updated_at)
SELECT * FROM unnest({_arrays(first, "varchar", "integer", "integer", "varchar", "varchar",
                              "varchar", "varchar", "varchar", "varchar", "timestamptz")})
ON CONFLICT (station_id, evse_id, connector_id) DO UPDATE SET
    status = excluded.status, raw_status = excluded.raw_status,
    error_code = excluded.error_code, vendor_id = excluded.vendor_id,
    vendor_error_code = excluded.vendor_error_code, info = excluded.info,
    updated_at = excluded.updated_at
WHERE connectors.updated_at <= excluded.updated_at
"""


HISTORY_COLUMNS = ("station_id", "evse_id", "connector_id", "status", "raw_status",
                   "error_code", "vendor_error_code", "info", "station_time", "at")


def _history_sql(first: int) -> str:
    return f"""
INSERT INTO status_history (station_id, evse_id, connector_id, status, raw_status,
                            error_code, vendor_error_code, info, station_time, at)
SELECT * FROM unnest({_arrays(first, "varchar", "integer", "integer", "varchar", "varchar",
                              "varchar", "varchar", "varchar", "timestamptz", "timestamptz")})
"""


READING_COLUMNS = ("station_id", "transaction_id", "evse_id", "connector_id", "timestamp",
                   "measurand", "value", "unit", "phase", "context", "location")


def _reading_sql(first: int) -> str:
    """Readings in the order given, each with the key of its station's transaction (NULL
    when the transaction is unknown)."""
    return f"""
INSERT INTO meter_readings (station_id, transaction_pk, evse_id, connector_id, timestamp,
                            measurand, value, unit, phase, context, location)
SELECT u.station_id, t.id, u.evse_id, u.connector_id, u.timestamp, u.measurand, u.value,
       u.unit, u.phase, u.context, u.location
FROM unnest({_arrays(first, "varchar", "varchar", "integer", "integer", "timestamptz",
                     "varchar", "double precision", "varchar", "varchar", "varchar",
                     "varchar")})
     WITH ORDINALITY AS u(station_id, transaction_id, evse_id, connector_id, timestamp,
                          measurand, value, unit, phase, context, location, n)
LEFT JOIN transactions AS t
       ON t.station_id = u.station_id AND t.transaction_id = u.transaction_id
ORDER BY u.n
"""


STATUSES_AND_READINGS_SQL = f"""
WITH connector_rows AS ({_connector_sql(1)}),
     history_rows AS ({_history_sql(1 + len(CONNECTOR_COLUMNS))})
{_reading_sql(1 + len(CONNECTOR_COLUMNS) + len(HISTORY_COLUMNS))}
"""
"""Connector upserts, status history and meter readings of a batch in one statement (one
round trip instead of three): the three touch different tables, and the readings look up
transactions written by the batch's earlier statements. Empty arrays insert nothing."""

OPEN_COLUMNS = ("station_id", "evse_id", "connector_id", "id_token", "meter_start_wh",
                "started_at")
OPEN_SQL = f"""
WITH input AS MATERIALIZED (
    SELECT u.*
    FROM unnest({_arrays(1, "varchar", "integer", "integer", "text", "double precision",
                         "timestamptz")})
         WITH ORDINALITY AS u(station_id, evse_id, connector_id, id_token, meter_start_wh,
                              started_at, n)
), known AS (
    SELECT input.n, found.id
    FROM input CROSS JOIN LATERAL (
        SELECT t.id FROM transactions t
        WHERE t.station_id = input.station_id AND t.started_at = input.started_at
          AND t.connector_id IS NOT DISTINCT FROM input.connector_id
          AND t.evse_id IS NOT DISTINCT FROM input.evse_id
          AND t.id_token IS NOT DISTINCT FROM input.id_token
          AND t.meter_start_wh IS NOT DISTINCT FROM input.meter_start_wh
        ORDER BY t.id LIMIT 1
    ) AS found
), drawn AS MATERIALIZED (
    SELECT nextval(pg_get_serial_sequence('transactions', 'id')) AS id, input.*
    FROM input WHERE input.n NOT IN (SELECT n FROM known)
), opened AS (
    INSERT INTO transactions (id, station_id, transaction_id, evse_id, connector_id,
                              id_token, meter_start_wh, started_at)
    SELECT id, station_id, id::text, evse_id, connector_id, id_token, meter_start_wh,
           started_at
    FROM drawn
    ON CONFLICT (station_id, transaction_id) DO NOTHING
    RETURNING id
)
SELECT coalesce(known.id, drawn.id), known.id IS NOT NULL OR opened.id IS NOT NULL
FROM input
LEFT JOIN known ON known.n = input.n
LEFT JOIN drawn ON drawn.n = input.n
LEFT JOIN opened ON opened.id = drawn.id
ORDER BY input.n
"""
"""1.6 transactions opened by the CSMS, in one round trip. A start the station already
opened (the same connector, id tag, meter start and start time: a StartTransaction sent again
after its answer was lost) gets that transaction's key. Each other row draws a key from the
sequence of ``transactions.id`` and is named after it; a name the station already uses is
skipped. One row per start, in order: its key and whether it is done (found or opened)."""


SHARD_COLUMNS = ("state_key", "station_id", "data", "updated_at")
SHARDS_SQL = f"""
INSERT INTO engine_state_shards (state_key, station_id, data, updated_at)
SELECT * FROM unnest({_arrays(1, "varchar", "varchar", "text", "timestamptz")})
ON CONFLICT (state_key, station_id) DO UPDATE SET
    data = excluded.data, updated_at = excluded.updated_at
"""
"""Upsert of the diagnostics engine's changed station shards: one statement, not an
``executemany`` (asyncpg's ``executemany`` could hang when cancelled, which kept a stopping
diagnostics pump alive past its stop timeout; a plain statement is cancelled cleanly)."""


def columns(rows: Sequence[dict[str, Any]], names: Sequence[str]) -> tuple[list[Any], ...]:
    """The rows (dicts) as one list per column, in ``names`` order, text made storable as
    :class:`~csms.store.types.StationText` makes it (PostgreSQL refuses NUL characters)."""
    return tuple([_storable(row[name]) for row in rows] for name in names)


def _storable(value: Any) -> Any:
    if type(value) is str and "\x00" in value:
        return value.replace("\x00", "\ufffd")
    return value


async def touch(connection: AsyncConnection, seen: dict[str, datetime]) -> int:
    """Create stations on first sight and move ``last_seen_at`` forward (never back); the id
    of the transaction."""
    result = await connection.exec_driver_sql(TOUCH_SQL, (list(seen), list(seen.values())))
    xid: int = result.scalar_one()
    return xid


async def commit_status(connection: AsyncConnection, xid: int) -> str | None:
    """``committed``, ``aborted`` or ``in progress``: what became of transaction ``xid``
    (``None`` once it is too old to tell)."""
    result = await connection.exec_driver_sql(COMMIT_STATUS_SQL, (xid,))
    status: str | None = result.scalar_one()
    return status


async def statuses_and_readings(
    connection: AsyncConnection, connectors: Sequence[dict[str, Any]],
    history: Sequence[dict[str, Any]], readings: Sequence[dict[str, Any]],
) -> None:
    """Upsert each connector's latest status (one row per connector; a late one never wins),
    append status history and meter readings (rows name their transaction by the station's
    id for it), in one round trip."""
    await connection.exec_driver_sql(STATUSES_AND_READINGS_SQL, (
        *columns(connectors, CONNECTOR_COLUMNS), *columns(history, HISTORY_COLUMNS),
        *columns(readings, READING_COLUMNS)))


async def open_transactions(connection: AsyncConnection, rows: Sequence[dict[str, Any]]
                            ) -> list[tuple[int, bool]]:
    """Find or insert the transactions, each new one named after a new key of
    ``transactions``; per row, in order, its key and whether it is done (not when the station
    already uses that name)."""
    result = await connection.exec_driver_sql(OPEN_SQL, columns(rows, OPEN_COLUMNS))
    rows_out: list[tuple[Any, ...]] = [tuple(row) for row in result.all()]  # for mypy
    return [(key, done) for key, done in rows_out]


async def engine_shards(connection: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Upsert engine-state shards (``engine_state_shards`` rows)."""
    await connection.exec_driver_sql(SHARDS_SQL, columns(rows, SHARD_COLUMNS))
