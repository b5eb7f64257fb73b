"""Station registration, credentials, details, and time zone handling."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from csms.store import Store, event_detail
from diagnostics.events import HeartbeatReceived, StationReported

PARIS = timezone(timedelta(hours=2))


async def test_ensure_station_is_idempotent(store: Store) -> None:
    assert await store.get_station("CP1") is None
    first = await store.ensure_station("CP1")
    assert first.id == "CP1" and first.connected is False and first.boot_count == 0
    assert first.registered_at.tzinfo is not None
    second = await store.ensure_station("CP1")
    assert second.registered_at == first.registered_at


async def test_password_hash(store: Store) -> None:
    await store.set_password_hash("CP1", "scrypt$hash")  # creates the station
    station = await store.get_station("CP1")
    assert station is not None and station.password_hash == "scrypt$hash"
    await store.set_password_hash("CP1", None)
    station = await store.get_station("CP1")
    assert station is not None and station.password_hash is None


async def test_station_details(store: Store) -> None:
    station = await store.set_station_details("CP1", location="Bay 3", owner="ACME")
    assert (station.location, station.owner, station.site) == ("Bay 3", "ACME", None)
    station = await store.set_station_details("CP1", site="Depot")  # others unchanged
    assert (station.location, station.owner, station.site) == ("Bay 3", "ACME", "Depot")
    station = await store.set_station_details("CP1", owner="")  # empty clears
    assert (station.location, station.owner, station.site) == ("Bay 3", None, "Depot")
    assert [s.id for s in await store.list_stations()] == ["CP1"]


async def test_list_stations_sorted(store: Store) -> None:
    for name in ["b", "a", "c"]:
        await store.ensure_station(name)
    assert [s.id for s in await store.list_stations()] == ["a", "b", "c"]


async def test_aware_datetimes_round_trip(store: Store) -> None:
    local = datetime(2025, 6, 1, 14, 30, 15, 123456, tzinfo=PARIS)
    await store.record(HeartbeatReceived(station_id="CP1", at=local))
    station = await store.get_station("CP1")
    assert station is not None and station.last_seen_at is not None
    assert station.last_seen_at == local
    assert station.last_seen_at.utcoffset() == timedelta(0)
    assert station.last_seen_at.hour == 12 and station.last_seen_at.microsecond == 123456

    # an instant later in UTC terms but "earlier" on the wall clock is still later
    later = datetime(2025, 6, 1, 12, 45, tzinfo=UTC)
    await store.record(HeartbeatReceived(station_id="CP1", at=later))
    station = await store.get_station("CP1")
    assert station is not None and station.last_seen_at == later


async def test_naive_datetimes_are_taken_as_utc(store: Store) -> None:
    await store.record(HeartbeatReceived(station_id="CP1", at=datetime(2025, 1, 1, 10, 0)))
    station = await store.get_station("CP1")
    assert station is not None
    assert station.last_seen_at == datetime(2025, 1, 1, 10, 0, tzinfo=UTC)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(payload=st.dictionaries(st.text(), json_values, max_size=5))
def test_event_detail_is_strict_json(payload: dict[str, object]) -> None:
    event = StationReported(
        station_id="CP1",
        at=datetime(2025, 1, 1, tzinfo=PARIS),
        kind="DataTransfer",
        payload=payload,
    )
    detail = event_detail(event)
    text = json.dumps(detail, allow_nan=False)  # no NaN/Infinity, which PostgreSQL refuses
    assert "\\u0000" not in text
    assert detail["at"] == "2024-12-31T22:00:00+00:00"
    assert detail["event"] == "StationReported"
    for key, value in payload.items():
        if "\x00" in key or "\ufffd" in key:
            continue  # NUL is replaced by U+FFFD, keys may then coincide
        if isinstance(value, float) and not math.isfinite(value):
            assert detail["payload"][key] == str(value)
        elif isinstance(value, str | int | float | bool) or value is None:
            assert detail["payload"][key] == (
                value.replace("\x00", "\ufffd") if isinstance(value, str) else value
            )
